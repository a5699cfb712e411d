"""Waiting timers and housekeeping, from an in-memory index of this worker's conversations.

The index mirrors, for every conversation this worker holds, what its timers need (shop, status,
the waiting episode, wall-clock times). The worker asks it every 0.1 s for the ticks now due and
applies each tick to the conversation's state at once (``process_tick``), so a waiting alert goes
out within the scan interval of its threshold. A tick that no longer fits the state does nothing,
so the index may be a little stale without harm; it is rebuilt from the table after a rebalance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from detectors.timing_policy import TimingPolicy
from stream.engine.records import Tick
from stream.engine.state import ConversationState

RESEND_MS = 30_000  # a close/purge tick not acted on is asked for again after this


@dataclass(slots=True)
class Entry:
    shop_id: str
    partition: int
    status: str
    last_arrival_ms: int
    closed_at: int | None
    waiting_since: int | None
    last_customer_ms: int | None
    level_sent: int  # the highest waiting level already applied or asked for
    shown_sent: bool = False  # on the board, or asked for
    gone_sent: bool = False
    housekeeping_sent_at: int = 0


class ConversationIndex:
    def __init__(self, policy_for: Callable[[str], TimingPolicy]) -> None:
        self.policy_for = policy_for
        self.entries: dict[str, Entry] = {}
        self.waiting: dict[str, Entry] = {}

    def observe(self, conversation_id: str, state: ConversationState | None) -> None:
        if state is None:
            self.entries.pop(conversation_id, None)
            self.waiting.pop(conversation_id, None)
            return
        w = state.waiting
        since = w.since if state.status == "open" else None
        old = self.entries.get(conversation_id)
        level, shown, gone = w.level, w.shown, w.gone
        if old is not None and old.waiting_since == since:
            level, shown = max(level, old.level_sent), shown or old.shown_sent
            # "gone" was asked for this silence only: a new customer message starts a new one
            gone = gone or (old.gone_sent and old.last_customer_ms == state.last_customer_ms)
        entry = Entry(state.shop_id, state.partition, state.status, state.last_arrival_ms, state.closed_at, since,
                      state.last_customer_ms, level, shown, gone)
        self.entries[conversation_id] = entry
        if since is None:
            self.waiting.pop(conversation_id, None)
        else:
            self.waiting[conversation_id] = entry

    def forget_partitions(self, partitions: set[int]) -> None:
        for conversation_id in [c for c, e in self.entries.items() if e.partition in partitions]:
            self.observe(conversation_id, None)

    def resync(self, items: Iterable[tuple[str, ConversationState]]) -> None:
        """Rebuild from the table (after a restart or a rebalance), keeping levels already asked for."""
        seen = set()
        for conversation_id, state in items:
            self.observe(conversation_id, state)
            seen.add(conversation_id)
        for conversation_id in set(self.entries) - seen:
            self.observe(conversation_id, None)

    def waiting_ticks(self, now_ms: int) -> list[tuple[str, Tick]]:
        """Waiting thresholds crossed since the last call: the board, warning, critical, gone quiet."""
        ticks = []
        for conversation_id, entry in self.waiting.items():
            since = entry.waiting_since
            if since is None:
                continue
            policy = self.policy_for(entry.shop_id)
            waited = now_ms - since
            due = 2 if waited >= policy.waiting_critical_s * 1000 else 1 if waited >= policy.waiting_warning_s * 1000 \
                else 0
            if due > entry.level_sent:
                entry.level_sent = due
                entry.shown_sent = True
                ticks.append((conversation_id, Tick("waiting", since, due)))
            elif not entry.shown_sent and waited >= policy.board_from_s * 1000:
                entry.shown_sent = True
                ticks.append((conversation_id, Tick("board", since)))
            quiet_since = entry.last_customer_ms or since
            if not entry.gone_sent and now_ms - quiet_since >= policy.customer_gone_s * 1000:
                entry.gone_sent = True
                ticks.append((conversation_id, Tick("gone", since)))
        return ticks

    def housekeeping_ticks(self, now_ms: int) -> list[tuple[str, Tick]]:
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
                ticks.append((conversation_id, Tick(kind)))
        return ticks
