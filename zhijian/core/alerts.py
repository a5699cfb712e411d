"""The alert record published on ``chat.alerts`` and stored in SQL."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EXCERPT_CONTEXT = 30  # characters kept on each side of the matched span


def iso_from_ms(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def alert_id_for(rule: str, message_id: str, start: int, end: int) -> str:
    """Deterministic, so reprocessing the same message yields the same alert (idempotent)."""
    digest = hashlib.blake2b(f"{rule}\x1f{message_id}\x1f{start}\x1f{end}".encode(), digest_size=12)
    return digest.hexdigest()


def excerpt_around(text: str, start: int, end: int) -> tuple[str, int, int]:
    """A window of ``text`` around [start, end) and the span's offsets inside that window."""
    lo = max(0, start - EXCERPT_CONTEXT)
    hi = min(len(text), end + EXCERPT_CONTEXT)
    return text[lo:hi], start - lo, end - lo


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    rule: str
    severity: str
    fatal: bool
    conversation_id: str
    shop_id: str
    agent_id: str | None
    team_id: str | None
    message_id: str
    excerpt: str
    span: tuple[int, int]  # offsets of the matched words inside ``excerpt``
    ts: str  # event time, ISO-8601 UTC
    ts_ms: int
    detected_at: str
    detail: dict[str, Any] = field(default_factory=dict)
    # An alert can change after it is raised (customer_waiting: warning → critical → cleared).
    # Each change carries the same alert_id and a higher revision; the newest revision wins.
    revision: int = 0
    state: str = "open"

    def to_dict(self) -> dict[str, Any]:
        # written out (not dataclasses.asdict, which deep-copies every value: 30 µs an alert)
        return {"alert_id": self.alert_id, "rule": self.rule, "severity": self.severity, "fatal": self.fatal,
                "conversation_id": self.conversation_id, "shop_id": self.shop_id, "agent_id": self.agent_id,
                "team_id": self.team_id, "message_id": self.message_id, "excerpt": self.excerpt,
                "span": list(self.span), "ts": self.ts, "ts_ms": self.ts_ms, "detected_at": self.detected_at,
                "detail": self.detail, "revision": self.revision, "state": self.state}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        values = dict(data)
        values["span"] = tuple(values["span"])
        return cls(**values)
