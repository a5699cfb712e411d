"""Waiting timers and housekeeping, driven by an in-memory index of this worker's conversations.

Faust tables may only change inside stream processing, so timers never touch state: they
produce *ticks* (``zhijian.ticks``, keyed by conversation) that the pipeline agent applies
against the authoritative state. A tick that no longer fits (the agent answered meanwhile,
another worker owns the conversation now) does nothing, so the index may be a little stale
without harm; it is refreshed from the table every few seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from detectors.timing_policy import TimingPolicy

RESEND_MS = 30_000  # a close/purge tick not yet acted on is sent again after this


@dataclass(slots=True)
class Entry:
    shop_id: str
    status: str
    last_arrival_ms: int
    closed_at: int | None
    waiting_since: int | None
    level_sent: int  # the highest waiting level already asked for (or in the state)
    shown_sent: bool = False  # the board tick was asked for (or the state shows it)
    housekeeping_sent_at: int = 0


class ConversationIndex:
    def __init__(self, policy_for: Callable[[str], TimingPolicy]) -> None:
        self.policy_for = policy_for
        self.entries: dict[str, Entry] = {}
        self.waiting: dict[str, Entry] = {}

    def observe(self, conversation_id: str, state: dict[str, Any] | None) -> None:
        if state is None:
            self.entries.pop(conversation_id, None)
            self.waiting.pop(conversation_id, None)
            return
        since = state["waiting"]["since"] if state["status"] == "open" else None
        old = self.entries.get(conversation_id)
        level = state["waiting"]["level"]
        shown = bool(state["waiting"].get("shown"))
        if old is not None and old.waiting_since == since:
            level = max(level, old.level_sent)
            shown = shown or old.shown_sent
        entry = Entry(state["shop_id"], state["status"], state["last_arrival_ms"], state.get("closed_at"), since, level,
                      shown)
        self.entries[conversation_id] = entry
        if since is None:
            self.waiting.pop(conversation_id, None)
        else:
            self.waiting[conversation_id] = entry

    def resync(self, items: Iterable[tuple[str, Any]]) -> None:
        """Rebuild from the table (after a restart or a rebalance), keeping levels already asked for."""
        seen = set()
        for conversation_id, state in items:
            if isinstance(state, dict):
                self.observe(conversation_id, state)
                seen.add(conversation_id)
        for conversation_id in set(self.entries) - seen:
            self.observe(conversation_id, None)

    def waiting_ticks(self, now_ms: int) -> list[tuple[str, dict[str, Any]]]:
        """customer_waiting thresholds crossed since the last call."""
        ticks = []
        for conversation_id, entry in self.waiting.items():
            if entry.waiting_since is None:
                continue
            policy = self.policy_for(entry.shop_id)
            waited = now_ms - entry.waiting_since
            due = 2 if waited >= policy.waiting_critical_s * 1000 else 1 if waited >= policy.waiting_warning_s * 1000 \
                else 0
            if due > entry.level_sent:
                entry.level_sent = due
                entry.shown_sent = True
            elif not entry.shown_sent and waited >= policy.board_from_s * 1000:
                entry.shown_sent = True
                due = 0  # onto the board, no alert yet
            else:
                continue
            ticks.append((conversation_id, {"kind": "waiting", "since": entry.waiting_since, "level": due,
                                            "at_ms": now_ms}))
        return ticks

    def housekeeping_ticks(self, now_ms: int) -> list[tuple[str, dict[str, Any]]]:
        """Quiet conversations to close, closed ones to forget."""
        ticks = []
        for conversation_id, entry in self.entries.items():
            if now_ms - entry.housekeeping_sent_at < RESEND_MS:
                continue
            policy = self.policy_for(entry.shop_id)
            kind = None
            if entry.status == "open" and now_ms - entry.last_arrival_ms >= policy.inactivity_close_s * 1000:
                kind = "close"
            elif entry.status == "closed" and entry.closed_at is not None \
                    and now_ms - entry.closed_at >= policy.closed_retention_s * 1000:
                kind = "purge"
            if kind is not None:
                entry.housekeeping_sent_at = now_ms
                ticks.append((conversation_id, {"kind": kind, "at_ms": now_ms}))
        return ticks
