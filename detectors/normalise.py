"""Text normalisation before matching, with a map back to the original offsets.

Agents and customers defeat naive keyword lists with full-width letters (ＱＱ), traditional
characters (妳有病嗎), characters spread apart (你 有 病, 你*有*病) and repeats (你你你). Rules are
matched on a normalised copy of the text; every normalised character remembers the span of
original text it came from, so findings still highlight the original.

Steps: NFKC (full/half width, so 「差评！」 reads as 差评!), lower case, Latin look-alikes from
other scripts folded (Cyrillic а/е/о/с, Greek ο/ν …), traditional → simplified (OpenCC's t2s
table, one character at a time) plus the rule set's own variant map (妳 → 你), dropping
whitespace and decoration symbols that stand between two CJK characters, joining single CJK
characters written apart with ASCII punctuation (你.有.病, 傻~逼, 你,有,病), and collapsing a run
of the same CJK character into one (not Chinese numerals: 一三八八八 is a number read out). Patterns
go through the same function, so 谢谢 in a rule still matches 谢谢 in a message. Most messages need
none of this: they take a fast path with no per-character work.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

_CJK_LO, _CJK_HI = 0x4E00, 0x9FFF
# Punctuation that ends or separates clauses: never dropped, so phrases do not join across it.
# A filler is anything that is neither a CJK character, a letter or digit, nor clause punctuation.
_FILLER = r"(?:[^\u4e00-\u9fff\w，。！？；：、…,.!?;:~．～\n]|_)"
_HANZI_DIGITS = "零〇一二三四五六七八九幺"  # never collapsed as repeats (一三八八八…: a number read out)
_INVISIBLE_CATEGORIES = frozenset({"Cf"})  # zero-width joiners and the like: dropped anywhere


def is_cjk(char: str) -> bool:
    return _CJK_LO <= ord(char) <= _CJK_HI


@lru_cache(maxsize=1)
def _opencc_t2s() -> dict[int, str]:
    """Single-character traditional → simplified pairs from OpenCC, computed once."""
    import opencc  # a C++ library with its dictionaries in the wheel; nothing is downloaded

    converter = opencc.OpenCC("t2s")
    chars = [chr(code) for code in range(_CJK_LO, _CJK_HI + 1)]
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # a phrase rule joined lines: fall back to per-character calls
        converted = [converter.convert(char) for char in chars]
    return {ord(src): dst for src, dst in zip(chars, converted, strict=True) if src != dst and len(dst) == 1}


# Letters of other scripts that look like Latin ones (sb written with a Cyrillic ѕ): folded to Latin.
LOOKALIKES = {
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ь": "b", "α": "a", "β": "b", "ε": "e",
    "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
}
# Full-width punctuation folds the way NFKC folds it (！ → !), so a rule written with one form matches both.
# The ideographic full stop and enumeration comma (。、) have no ASCII form and stay.
FULLWIDTH_PUNCTUATION = {chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)
                         if not chr(code - 0xFEE0).isalnum()}


def translation_table(variants: Mapping[str, str]) -> dict[int, str]:
    table = dict(_opencc_t2s())
    table.update({ord(src): dst for src, dst in FULLWIDTH_PUNCTUATION.items()})
    table.update({ord(src): dst for src, dst in LOOKALIKES.items()})
    table.update({ord(src): dst for src, dst in variants.items()})
    return table


@lru_cache(maxsize=1)
def _nfkc_lower_changes() -> str:
    """A regex character class of the BMP characters NFKC plus lower case turn into other
    letters or digits (ＱＱ → qq, １２３ → 123, Ａ → a)."""
    ranges: list[list[int]] = []
    for code in range(0x20, 0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        folded = unicodedata.normalize("NFKC", char).lower()
        # full-width punctuation (，！？) folds to ASCII punctuation, which no rule needs: skip it
        if folded != char and any(c.isalnum() for c in folded):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
                   for lo, hi in ranges)


@dataclass(slots=True)
class Normalised:
    """The normalised text; ``starts[i]``/``ends[i]`` give the original span of character i.

    Both are ``None`` when normalisation kept every character in place (the common case).
    When only repeats were collapsed, the maps are built on first use by ``rebuild``: most
    messages have no finding, so most never need them.
    """

    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None
    rebuild: Callable[[], Normalised] | None = None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of the normalised text back to the original text."""
        if self.rebuild is not None:
            full = self.rebuild()
            self.starts, self.ends, self.rebuild = full.starts, full.ends, None
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


class Normaliser:
    def __init__(self, variants: Mapping[str, str] | None = None) -> None:
        self._table = translation_table(variants or {})
        # Characters that NFKC or lower case would change, and traditional characters: most
        # texts have neither, and the conversions cost far more than these two scans.
        self._nfkc_changes = re.compile(f"[{_nfkc_lower_changes()}\u200b-\u200f\u2060\ufeff\u00ad]")
        self._traditional = re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(self._table)) + "]")
        # Chinese numerals are not collapsed: 一三八八八 is a phone number's digits, not a stutter
        self._repeat = re.compile(rf"((?![{_HANZI_DIGITS}])[\u4e00-\u9fff])\1")
        self._invisible = re.compile(r"[\u200b-\u200f\u2060\ufeff\u00ad]")
        # Fillers between two CJK characters, one of which stands alone (你 有 病), so two clauses
        # the writer separated with a space (稍等哈  给您查) stay apart.
        # ASCII punctuation (. ~ , - _ *) joins only two characters that both stand alone (你.有.病,
        # 傻~逼), so 好的,您稍等 stays as written; . * _ · inside a word always join (投.诉).
        self._filler_run = re.compile(
            rf"(?<![\u4e00-\u9fff][\u4e00-\u9fff])(?<=[\u4e00-\u9fff]){_FILLER}+(?=[\u4e00-\u9fff])"
            rf"|(?<=[\u4e00-\u9fff]){_FILLER}+(?=[\u4e00-\u9fff](?![\u4e00-\u9fff]))"
            rf"|(?<![\u4e00-\u9fff][\u4e00-\u9fff])(?<=[\u4e00-\u9fff])(?:{_FILLER}|[.,~\-*])+"
            rf"(?=[\u4e00-\u9fff](?![\u4e00-\u9fff]))"
            # a dot or asterisk inside a word never separates clauses in Chinese (投.诉, 骗*子)
            rf"|(?<=[\u4e00-\u9fff])[.*_·]{{1,3}}(?=[\u4e00-\u9fff])"
        )
        self._joinable_after_cjk = re.compile(rf"[\u4e00-\u9fff](?:{_FILLER}|[.,~])")
        self._repeat_run = re.compile(rf"((?![{_HANZI_DIGITS}])[\u4e00-\u9fff])\1+")
        self._cache: tuple[str | None, Normalised] = (None, Normalised(""))

    def _fold(self, text: str) -> str:
        """NFKC and lower case for the characters they turn into other letters or digits, one at a time,
        so the fast path and the offset map (``_slow``) always agree (… stays …, not ...)."""
        return self._nfkc_changes.sub(lambda m: unicodedata.normalize("NFKC", m.group()).lower(), text)

    def __call__(self, text: str) -> Normalised:
        # the same message is normalised by the detectors and then by the conversation checks: remember the last
        # (one tuple, assigned at once, so threads sharing a normaliser never see a torn pair)
        cached = self._cache
        if cached[0] is text:
            return cached[1]
        result = self._normalise(text)
        self._cache = (text, result)
        return result

    def _normalise(self, text: str) -> Normalised:
        quick = text
        if self._nfkc_changes.search(text):
            quick = self._fold(text)
            if len(quick) != len(text) or self._invisible.search(quick):
                return self._slow(text)
        if self._traditional.search(quick):
            quick = quick.translate(self._table)
            if len(quick) != len(text):  # a variant that maps one character to several
                return self._slow(text)
        out = quick
        if self._joinable_after_cjk.search(out):
            out = self._filler_run.sub("", out)
        if self._repeat.search(out):
            out = self._repeat_run.sub(r"\1", out)
        if out == quick:
            return Normalised(quick)
        return Normalised(out, rebuild=lambda: self._slow(text))

    def _slow(self, text: str) -> Normalised:
        chars, starts, ends = self._per_character(text)
        # Drop fillers between CJK characters where one neighbour stands alone (see _filler_run).
        edits = [(*match.span(), False) for match in self._filler_run.finditer(chars)]
        chars, starts, ends = _edit(chars, starts, ends, edits)
        # Collapse a run of one CJK character into one (你你你 → 你, 谢谢 → 谢 in text and rules alike).
        runs = [(m.start(), m.end(), True) for m in self._repeat_run.finditer(chars)]
        chars, starts, ends = _edit(chars, starts, ends, runs)
        return Normalised(chars, tuple(starts), tuple(ends))

    def _per_character(self, text: str) -> tuple[str, list[int], list[int]]:
        """NFKC, lower, simplify and drop invisible characters, remembering each one's origin."""
        quick = self._fold(text).translate(self._table)
        if len(quick) == len(text):
            starts = list(range(len(text)))
            ends = list(range(1, len(text) + 1))
            invisible = [(m.start(), m.end(), False) for m in self._invisible.finditer(quick)]
            return _edit(quick, starts, ends, invisible) if invisible else (quick, starts, ends)
        chars: list[str] = []
        starts = []
        for index, original in enumerate(text):
            for char in self._fold(original).translate(self._table):
                if unicodedata.category(char) not in _INVISIBLE_CATEGORIES:
                    chars.append(char)
                    starts.append(index)
        return "".join(chars), starts, [start + 1 for start in starts]


def _edit(text: str, starts: list[int], ends: list[int],
          edits: list[tuple[int, int, bool]]) -> tuple[str, list[int], list[int]]:
    """Apply ordered, non-overlapping edits: (lo, hi, keep_one) deletes text[lo:hi] or keeps its
    first character spanning the whole range. The origin maps follow."""
    if not edits:
        return text, starts, ends
    out: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    position = 0
    for lo, hi, keep_one in edits:
        out.append(text[position:lo])
        new_starts.extend(starts[position:lo])
        new_ends.extend(ends[position:lo])
        if keep_one:
            out.append(text[lo])
            new_starts.append(starts[lo])
            new_ends.append(ends[hi - 1])
        position = hi
    out.append(text[position:])
    new_starts.extend(starts[position:])
    new_ends.extend(ends[position:])
    return "".join(out), new_starts, new_ends
