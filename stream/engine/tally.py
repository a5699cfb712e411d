"""Per-agent running tallies, exact across restarts without per-event bookkeeping.

The pipeline folds each event's :class:`Credit` into a *partial*: one agent's cumulative totals
from one partition of ``chat.messages``, kept in a table next to the conversations (so both come
back from their changelogs at the same point after a crash, and a replayed event is recognised as
a duplicate by the conversation before it can be credited twice). Changed partials are published
as a whole, with a version that only grows, on the activity topic keyed by agent; the tally keeps
per agent the newest partial of every partition and adds them up. A partial published twice, late,
or out of order changes nothing, and one lost in a crash is published again with the next change:
the published value is cumulative, never a delta.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from stream.engine.records import Credit

DAYS_KEPT = 7


@dataclass(slots=True)
class Totals:
    messages: int = 0
    findings: int = 0  # every counted rule hit, alerted or held back
    by_rule: dict[str, int] = field(default_factory=dict)
    first_responses: int = 0
    first_response_ms_total: int = 0
    days: dict[str, list[float]] = field(default_factory=dict)  # local day → [conversations, score sum, fatal]

    def credit(self, credit: Credit) -> None:
        self.messages += credit.messages
        for rule in credit.rules:
            self.by_rule[rule] = self.by_rule.get(rule, 0) + 1
        self.findings += len(credit.rules)
        if credit.first_response_ms is not None:
            self.first_responses += 1
            self.first_response_ms_total += int(credit.first_response_ms)
        if credit.day is not None:
            bucket = self.days.setdefault(credit.day, [0, 0.0, 0])
            bucket[0] += credit.conversations
            bucket[1] = round(bucket[1] + float(credit.score or 0.0), 3)
            bucket[2] += int(credit.fatal)
            if len(self.days) > DAYS_KEPT:
                for day in sorted(self.days)[:-DAYS_KEPT]:
                    del self.days[day]

    def add(self, other: Totals) -> None:
        self.messages += other.messages
        self.findings += other.findings
        for rule, count in other.by_rule.items():
            self.by_rule[rule] = self.by_rule.get(rule, 0) + count
        self.first_responses += other.first_responses
        self.first_response_ms_total += other.first_response_ms_total
        for day, (conversations, score_sum, fatal) in other.days.items():
            bucket = self.days.setdefault(day, [0, 0.0, 0])
            bucket[0] += conversations
            bucket[1] = round(bucket[1] + score_sum, 3)
            bucket[2] += fatal

    def to_list(self) -> list[Any]:
        return [self.messages, self.findings, self.by_rule, self.first_responses, self.first_response_ms_total,
                self.days]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Totals:
        return cls(raw[0], raw[1], dict(raw[2]), raw[3], raw[4], {d: list(v) for d, v in raw[5].items()})


def partial_key(partition: int, agent_id: str) -> str:
    return f"{partition}|{agent_id}"


@dataclass(slots=True)
class Partial:
    """One agent's totals from one partition of the input, with a version that only grows."""

    agent_id: str
    partition: int
    team_id: str | None = None
    version: int = 0
    totals: Totals = field(default_factory=Totals)

    def credit(self, credit: Credit) -> None:
        self.version += 1
        if credit.team_id is not None:
            self.team_id = credit.team_id
        self.totals.credit(credit)

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, "agent_id": self.agent_id, "partition": self.partition, "team_id": self.team_id,
                           "version": self.version, "totals": self.totals.to_list()},
                          ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Partial:
        body = json.loads(raw)
        if body.get("v") != 1:
            raise ValueError("not a tally partial")
        return cls(str(body["agent_id"]), int(body["partition"]), body["team_id"], int(body["version"]),
                   Totals.from_list(body["totals"]))


@dataclass(slots=True)
class Tally:
    """One agent's tally: the newest partial of every source partition."""

    agent_id: str
    team_id: str | None = None
    parts: dict[str, Partial] = field(default_factory=dict)

    def apply(self, partial: Partial) -> bool:
        """Take ``partial`` if it is newer than what this tally has from its partition."""
        key = str(partial.partition)
        known = self.parts.get(key)
        if known is not None and partial.version <= known.version:
            return False
        self.parts[key] = partial
        if partial.team_id is not None:
            self.team_id = partial.team_id
        return True

    @property
    def totals(self) -> Totals:
        total = Totals()
        for key in sorted(self.parts):
            total.add(self.parts[key].totals)
        return total

    def public_view(self) -> dict[str, Any]:
        """The tally without bookkeeping, with the mean first response in seconds."""
        t = self.totals
        mean_s = t.first_response_ms_total / t.first_responses / 1000 if t.first_responses else None
        return {
            "agent_id": self.agent_id, "team_id": self.team_id, "messages": t.messages, "findings": t.findings,
            "by_rule": dict(sorted(t.by_rule.items())), "first_responses": t.first_responses,
            "first_response_mean_s": None if mean_s is None else round(mean_s, 3),
            "days": {day: {"conversations": int(c), "score_sum": s, "fatal": int(f), "mean_score": round(s / c, 3)}
                     for day, (c, s, f) in sorted(t.days.items()) if c},
        }

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, "agent_id": self.agent_id, "team_id": self.team_id,
                           "parts": {k: json.loads(p.to_json()) for k, p in self.parts.items()}},
                          ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Tally:
        body = json.loads(raw)
        if body.get("v") != 1:
            raise ValueError("not a tally")
        parts = {k: Partial.from_json(json.dumps(p)) for k, p in body["parts"].items()}
        return cls(str(body["agent_id"]), body["team_id"], parts)
