"""The state of one live conversation: small, typed, and independent of its length.

What the worker keeps per conversation (in the Faust table) is only what the live figures need:
the turn machine (``turns.Timeline``), counts per label, the throttle of live alerts, the waiting
episode, the conversation checks folded in message by message, and a ring of recent message ids
for de-duplication. The transcript and its texts are not here: they go to SQL (``messages``) by
way of the transcript topic.

Encoded as compact JSON at the table boundary only (``encode``/``decode``); a stored value is a
few hundred bytes to about 2 KB whatever the length of the conversation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from stream.engine.turns import Timeline

RING = 64  # de-duplication: ids of the conversation's last RING events are remembered exactly
EXCERPT_CHARS = 60
CHECK_WINDOW = 4  # first and last agent messages kept for 开头语/结束语 (the rule set's window ≤ this)
GREETING, CLOSING, POLITE = 1, 2, 4


def id_hash(message_id: str) -> int:
    """64-bit fingerprint of a message id: a false duplicate (a real message dropped) is about 1 in 3·10^17 per
    event with a ring of 64, and cannot be provoked by choosing ids (unlike CRC32)."""
    return int.from_bytes(hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little")


@dataclass(slots=True)
class Waiting:
    since: int | None = None
    level: int = 0  # 0 none, 1 warning sent, 2 critical sent
    shown: bool = False  # on the waiting board
    message_id: str | None = None  # the first customer message of the waiting turn
    gone: bool = False  # the customer went quiet for customer_gone_s while waiting


@dataclass(slots=True)
class Checks:
    """开头语/结束语/礼貌用语, folded in per agent message: (ts, seq, flags) of the first and last few."""

    first: list[tuple[int, int, int]] = field(default_factory=list)
    last: list[tuple[int, int, int]] = field(default_factory=list)
    polite: int = 0
    messages: int = 0
    first_id: str | None = None
    last_id: str | None = None

    def add(self, ts: int, seq: int, flags: int, message_id: str) -> None:
        key = (ts, seq, flags)
        self.messages += 1
        self.polite += bool(flags & POLITE)
        if len(self.first) < CHECK_WINDOW or key < self.first[-1]:
            self.first = sorted([*self.first, key])[:CHECK_WINDOW]
            if self.first[0] == key:
                self.first_id = message_id
        if len(self.last) < CHECK_WINDOW or key > self.last[0]:
            self.last = sorted([*self.last, key])[-CHECK_WINDOW:]
            if self.last[-1] == key:
                self.last_id = message_id


@dataclass(slots=True)
class ConversationState:
    conversation_id: str
    shop_id: str
    partition: int  # of chat.messages: where the conversation lives (its changelog partition)
    team_id: str | None = None
    assigned: str | None = None  # the agent the conversation is assigned to (agent_id on customer messages)
    status: str = "open"
    timeline: Timeline = field(default_factory=Timeline)
    seq: int = 0
    late: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    alerted: dict[str, list[int]] = field(default_factory=dict)  # rule_id → [last alert ts, held back]
    waiting: Waiting = field(default_factory=Waiting)
    checks: Checks = field(default_factory=Checks)
    ring: list[int] = field(default_factory=list)
    opened_ms: int | None = None
    closed_ms: int | None = None
    close_reason: str | None = None
    closed_at: int | None = None  # wall clock of the close (retention)
    last_arrival_ms: int = 0  # wall clock of the newest event (inactivity)
    last_customer_ms: int | None = None  # event time of the newest customer message
    last_customer_text: str = ""  # its first EXCERPT_CHARS characters (the waiting board)
    version: int = 0  # of the snapshots published for this conversation
    first_response_sent: bool = False  # the first response was measured (and alerted if slow)
    summary_checks: dict[str, Any] | None = None
    credited: list[Any] | None = None  # [day, score, fatal] last credited to the agent's running score

    @property
    def owner(self) -> str | None:
        return self.timeline.current.owner

    def seen(self, message_id: str) -> bool:
        return id_hash(message_id) in self.ring

    def remember(self, message_id: str) -> None:
        self.ring.append(id_hash(message_id))
        if len(self.ring) > RING:
            del self.ring[0]

    # -- the table boundary ---------------------------------------------------------------------
    def to_json(self) -> bytes:
        w, c = self.waiting, self.checks
        body = {
            "v": 1, "id": self.conversation_id, "shop": self.shop_id, "p": self.partition, "team": self.team_id,
            "as": self.assigned, "st": self.status, "tl": self.timeline.to_list(), "seq": self.seq,
            "late": self.late, "lab": self.labels, "alr": self.alerted,
            "w": [w.since, w.level, w.shown, w.message_id, w.gone],
            "ck": [[list(x) for x in c.first], [list(x) for x in c.last], c.polite, c.messages, c.first_id,
                   c.last_id],
            "ring": base64.b64encode(struct.pack(f"<{len(self.ring)}Q", *self.ring)).decode(),
            "o": self.opened_ms, "cl": [self.closed_ms, self.close_reason, self.closed_at],
            "arr": self.last_arrival_ms, "lc": [self.last_customer_ms, self.last_customer_text],
            "ver": self.version, "frs": self.first_response_sent, "sc": self.summary_checks, "cr": self.credited,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> ConversationState:
        b = json.loads(raw)
        if b.get("v") != 1:
            raise ValueError(f"unknown conversation state version {b.get('v')!r}")
        w, c, cl, lc = b["w"], b["ck"], b["cl"], b["lc"]
        return cls(
            conversation_id=b["id"], shop_id=b["shop"], partition=b["p"], team_id=b["team"], assigned=b["as"],
            status=b["st"], timeline=Timeline.from_list(b["tl"]), seq=b["seq"], late=b["late"], labels=b["lab"],
            alerted=b["alr"], waiting=Waiting(w[0], w[1], w[2], w[3], w[4]),
            checks=Checks([tuple(x) for x in c[0]], [tuple(x) for x in c[1]], c[2], c[3], c[4], c[5]),
            ring=_ring(b["ring"]), opened_ms=b["o"], closed_ms=cl[0], close_reason=cl[1], closed_at=cl[2],
            last_arrival_ms=b["arr"], last_customer_ms=lc[0], last_customer_text=lc[1], version=b["ver"],
            first_response_sent=b["frs"], summary_checks=b["sc"], credited=b.get("cr"),
        )


def _ring(packed: str) -> list[int]:
    raw = base64.b64decode(packed)
    return list(struct.unpack(f"<{len(raw) // 8}Q", raw))
