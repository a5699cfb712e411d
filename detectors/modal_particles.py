"""banned_word: modal particles (语气词) used as words in an agent's message.

The seed rubric bans 哦 恩/嗯 噢 喔 啊 喂 哎 as words. The same characters inside real
words (感恩, 恩施, 喂食器, 喂养 …) are not violations. A particle is a violation unless
an exception word covering it stands at that position. Plain string scanning, no
segmentation: a message without any candidate character costs one regex search.
"""

from __future__ import annotations

import re

from detectors.findings import Finding

PARTICLES = "哦恩嗯噢喔啊喂哎"

# Words in which a particle character is part of a content word, not a modal particle.
EXCEPTION_WORDS = (
    "感恩", "恩施", "恩爱", "恩人", "恩情", "恩惠", "恩怨", "恩典", "恩师", "报恩", "开恩",
    "谢恩", "恩赐", "忘恩", "施恩", "大恩", "恩格尔", "恩平",
    "喂食", "喂养", "喂奶", "喂药", "喂猫", "喂狗", "喂鱼", "投喂", "喂饱", "喂料", "喂水", "喂宝宝",
    "喂哺", "哺喂", "饲喂",
)

_CANDIDATE = re.compile(f"[{PARTICLES}]")
RULE_ID = "banned_word.modal_particle"


def _exceptions_by_char() -> dict[str, tuple[tuple[str, int], ...]]:
    table: dict[str, list[tuple[str, int]]] = {}
    for word in EXCEPTION_WORDS:
        for offset, char in enumerate(word):
            if char in PARTICLES:
                table.setdefault(char, []).append((word, offset))
    return {char: tuple(entries) for char, entries in table.items()}


_EXCEPTIONS = _exceptions_by_char()


def _inside_exception_word(text: str, index: int) -> bool:
    for word, offset in _EXCEPTIONS.get(text[index], ()):
        start = index - offset
        if start >= 0 and text.startswith(word, start):
            return True
    return False


def detect_modal_particles(text: str) -> list[Finding]:
    """Every modal particle used as a word, with its span in ``text``.

    Repeated particles (哦哦, 啊啊啊) form one finding spanning the run.
    """
    findings: list[Finding] = []
    position = 0
    while True:
        match = _CANDIDATE.search(text, position)
        if match is None:
            return findings
        index = match.start()
        if _inside_exception_word(text, index):
            position = index + 1
            continue
        end = index + 1
        while end < len(text) and text[end] in PARTICLES and not _inside_exception_word(text, end):
            end += 1
        findings.append(
            Finding(
                label="banned_word",
                rule_id=RULE_ID,
                start=index,
                end=end,
                matched=text[index:end],
                severity="critical",
                fatal=True,
            )
        )
        position = end
