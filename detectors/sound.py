"""Matching by sound: homophones (你有丙, 神精病, 沙比, 草泥马) and pinyin (ni you bing, shabi).

Every CJK character is replaced by one private-use character standing for its toneless
syllable (the first reading pypinyin lists), with the fuzzy pairs a pinyin keyboard offers
folded (zh/z, ch/c, sh/s, -ing/-in, -eng/-en). Latin words that spell whole pinyin syllables
become the same characters. A rule's ``sound_terms`` go through the same mapping, so
你有病 and 你有丙 and "ni you bing" are one string in this view. Only CJK text is one character
per character, so the view keeps a map back to the normalised text when Latin words were read.

Single syllables are never matched by sound (蠢 would match 春 and 纯): the rule set refuses them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_PUA = 0xE000
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"[a-z]{2,}")
_ASCII_ALNUM = re.compile(r"[a-z0-9]")
_SEPARATOR = re.compile(r"[\s.,~\-_*'·]+")


def _toneless(reading: str) -> str:
    plain = unicodedata.normalize("NFD", reading.replace("ü", "v").replace("ǖ", "v").replace("ǘ", "v")
                                  .replace("ǚ", "v").replace("ǜ", "v"))
    return "".join(char for char in plain if not unicodedata.combining(char))


def fold(syllable: str) -> str:
    """The fuzzy sound class of a toneless syllable (zh/z, ch/c, sh/s, -ing/-in, -eng/-en)."""
    if syllable[:2] in ("zh", "ch", "sh"):
        syllable = syllable[0] + syllable[2:]
    if syllable.endswith(("ing", "eng")):
        syllable = syllable[:-1]
    return syllable


@dataclass(frozen=True, slots=True)
class SoundTables:
    cjk: dict[int, str]  # CJK code point → sound character
    syllables: dict[str, str]  # spelled toneless syllable → sound character
    longest: int


@lru_cache(maxsize=1)
def tables() -> SoundTables:
    from pypinyin.pinyin_dict import pinyin_dict  # shipped in the wheel, nothing is downloaded

    classes: dict[str, str] = {}
    cjk: dict[int, str] = {}
    spelled: dict[str, str] = {}
    for code, readings in pinyin_dict.items():
        first = _toneless(readings.split(",")[0])
        if not 0x4E00 <= code <= 0x9FFF or not first.isalpha() or not first.isascii():
            continue
        sound = classes.setdefault(fold(first), chr(_PUA + len(classes)))
        cjk[code] = sound
    for readings in pinyin_dict.values():  # every spelling any character has, for Latin words
        for reading in readings.split(","):
            plain = _toneless(reading)
            if plain.isascii() and plain.isalpha() and fold(plain) in classes:
                spelled[plain] = classes[fold(plain)]
    return SoundTables(cjk, spelled, max(map(len, spelled)))


def _segment(word: str, syllables: dict[str, str], longest: int) -> list[str] | None:
    """``word`` as whole syllables (niyoubing → ni you bing), longest first; None if it is not pinyin."""
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[len(word)] = []
    for start in range(len(word) - 1, -1, -1):
        for end in range(min(len(word), start + longest), start, -1):
            rest = best[end]
            if rest is not None and word[start:end] in syllables:
                best[start] = [word[start:end], *rest]
                break
    return best[0]


@dataclass(slots=True)
class SoundView:
    text: str
    starts: list[int] | None = None  # normalised-text span of each view character; None: one to one
    ends: list[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def sound_view(text: str) -> SoundView:
    """The sound view of normalised ``text`` (see the module docstring)."""
    sound = tables()
    quick = text.translate(sound.cjk)
    if not _LATIN_WORD.search(text):
        return SoundView(quick)
    spelled: dict[int, tuple[int, list[str]]] = {}  # start of a pinyin word → (end, its syllables)
    for match in _LATIN_WORD.finditer(text):
        parts = _segment(match.group(), sound.syllables, sound.longest)
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end()] if match.end() < len(text) else " "
        if parts is not None and not _ASCII_ALNUM.match(before) and not _ASCII_ALNUM.match(after):
            spelled[match.start()] = (match.end(), parts)
    if not spelled:
        return SoundView(quick)
    word_ends = {end for end, _ in spelled.values()}
    dropped: dict[int, int] = {}  # separators between a pinyin word and another sound unit
    for match in _SEPARATOR.finditer(text):
        lo, hi = match.span()
        if lo == 0 or hi == len(text):
            continue
        left_word, right_word = lo in word_ends, hi in spelled
        left_sound = left_word or bool(_CJK.match(text[lo - 1]))
        right_sound = right_word or bool(_CJK.match(text[hi]))
        if (left_word or right_word) and left_sound and right_sound:
            dropped[lo] = hi
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    while position < len(text):
        if position in spelled:
            _, parts = spelled[position]
            for part in parts:
                chars.append(sound.syllables[part])
                starts.append(position)
                ends.append(position + len(part))
                position += len(part)
            continue
        if position in dropped:
            position = dropped[position]
            continue
        chars.append(quick[position])
        starts.append(position)
        ends.append(position + 1)
        position += 1
    return SoundView("".join(chars), starts, ends)


def sound_of(term: str) -> str | None:
    """A sound term in the sound view, or None unless it is wholly CJK or pinyin of ≥ 2 syllables."""
    view = sound_view(term).text
    if len(view) < 2 or not all(_PUA <= ord(char) < _PUA + 0x1000 for char in view):
        return None
    return view
