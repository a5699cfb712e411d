"""Typed records the conversation engine emits, with their JSON form for the topics.

- ``TranscriptLine``: one event of a conversation, with its text and its findings' spans; batched
  per partition on the transcript topic and stored in SQL (``messages``, ``findings``). The live
  state never holds texts.
- ``Credit``: what one event adds to its agent's running tally (folded into ``stream.engine.tally``).
- ``Tick``: what a timer asks of a conversation (the waiting board, a waiting level, close, purge).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SENDER_OF_KIND = {"c": "customer", "a": "agent", "b": "bot", "t": "transferred", "e": "ended", "s": "started"}


@dataclass(frozen=True, slots=True)
class Mark:
    """A finding on one message: where, what, and how it was made."""

    label: str
    start: int
    end: int
    rule_id: str
    severity: str
    fatal: bool
    counted: bool  # counts toward the score and the tally (False: QA review queue only)
    source: str = "rule"
    score: float | None = None

    def to_list(self) -> list[Any]:
        return [self.label, self.start, self.end, self.rule_id, self.severity, self.fatal, self.counted, self.source,
                self.score]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Mark:
        return cls(raw[0], int(raw[1]), int(raw[2]), raw[3], raw[4], bool(raw[5]), bool(raw[6]), raw[7], raw[8])


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    conversation_id: str
    message_id: str
    ts_ms: int
    seq: int
    kind: str  # c a b t e s
    agent_id: str | None
    team_id: str | None
    shop_id: str
    text: str
    late: bool
    ruleset: str
    marks: tuple[Mark, ...] = ()

    @property
    def sender(self) -> str:
        return SENDER_OF_KIND[self.kind]

    def to_list(self) -> list[Any]:
        return [self.conversation_id, self.message_id, self.ts_ms, self.seq, self.kind, self.agent_id, self.team_id,
                self.shop_id, self.text, self.late, self.ruleset, [m.to_list() for m in self.marks]]

    @classmethod
    def from_list(cls, raw: list[Any]) -> TranscriptLine:
        return cls(raw[0], raw[1], int(raw[2]), int(raw[3]), raw[4], raw[5], raw[6], raw[7], raw[8], bool(raw[9]),
                   raw[10], tuple(Mark.from_list(m) for m in raw[11]))


def encode_lines(lines: list[TranscriptLine]) -> bytes:
    return json.dumps({"v": 1, "lines": [line.to_list() for line in lines]}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def decode_lines(raw: bytes) -> list[TranscriptLine]:
    body = json.loads(raw)
    if not isinstance(body, dict) or body.get("v") != 1:
        raise ValueError("not a transcript batch")
    return [TranscriptLine.from_list(line) for line in body["lines"]]


@dataclass(slots=True)
class Credit:
    """One event's contribution to an agent's tally."""

    agent_id: str
    team_id: str | None
    messages: int = 0
    rules: list[str] = field(default_factory=list)  # every counted finding, alerted or held back
    first_response_ms: int | None = None
    day: str | None = None  # a conversation of this agent closed: its local day, score and fatal flag
    score: float | None = None
    fatal: int = 0
    conversations: int = 1  # 0 when a reopened conversation closes again: only its score changes (a delta)


@dataclass(frozen=True, slots=True)
class Tick:
    """What a timer asks of one conversation; applied only if it still fits the state."""

    kind: str  # "board" | "waiting" | "gone" | "close" | "purge"
    since: int | None = None  # the waiting episode it is about
    level: int = 0
