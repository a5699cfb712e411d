"""Waiting timers and housekeeping, from an in-memory index of this worker's conversations.

The index mirrors, for every conversation this worker holds, what its timers need (shop, status,
the waiting episode, wall-clock times). The worker asks it every 0.1 s for the ticks now due and
applies each tick to the conversation's state at once (``process_tick``), so a waiting alert goes
out within the scan interval of its threshold. A tick that no longer fits the state does nothing,
so the index may be a little stale without harm; it is rebuilt from the table after a rebalance.

Waiting conversations sit in a heap by the time their next threshold falls due, so a scan costs
only what is due (not one look at every waiting conversation every 0.1 s). Heap items are checked
against ``scheduled`` when popped, so an answered or rescheduled conversation leaves a stale item
that costs nothing but its slot; the heap is rebuilt when stale items outnumber live ones. A shop's
thresholds changed by a rule reload reschedule that shop's waiting conversations at the next scan.
"""

from __future__ import annotations

import heapq
import math
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
        self.scheduled: dict[str, int] = {}  # waiting conversation -> when its next threshold falls due (ms)
        self._heap: list[tuple[int, str]] = []  # (due ms, conversation); stale unless it matches ``scheduled``
        self._policies: dict[str, TimingPolicy] = {}  # the thresholds each shop's schedule was computed with

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
            self.scheduled.pop(conversation_id, None)
        else:
            self.waiting[conversation_id] = entry
            self._schedule(conversation_id, entry)

    def _policy(self, shop_id: str) -> TimingPolicy:
        policy = self._policies.get(shop_id)
        if policy is None:
            policy = self._policies[shop_id] = self.policy_for(shop_id)
        return policy

    def _schedule(self, conversation_id: str, entry: Entry) -> None:
        """Put the conversation in the heap at its next threshold (none left: out of the heap)."""
        due = next_due(entry, self._policy(entry.shop_id))
        if due is None:
            self.scheduled.pop(conversation_id, None)
            return
        if self.scheduled.get(conversation_id) == due:
            return
        self.scheduled[conversation_id] = due
        heapq.heappush(self._heap, (due, conversation_id))
        if len(self._heap) > 2 * len(self.scheduled) + 1024:  # mostly stale: rebuild from what is live
            self._heap = [(d, c) for c, d in self.scheduled.items()]
            heapq.heapify(self._heap)

    def _reschedule_reloaded_shops(self) -> None:
        changed = [shop for shop, policy in self._policies.items() if self.policy_for(shop) != policy]
        if not changed:
            return
        for shop in changed:
            del self._policies[shop]
        for conversation_id, entry in self.waiting.items():
            if entry.shop_id in changed:
                self._schedule(conversation_id, entry)

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
        self._reschedule_reloaded_shops()
        ticks: list[tuple[str, Tick]] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            due, conversation_id = heapq.heappop(heap)
            if self.scheduled.get(conversation_id) != due:
                continue  # answered, or rescheduled since
            del self.scheduled[conversation_id]
            entry = self.waiting.get(conversation_id)
            if entry is None:
                continue
            self._check(conversation_id, entry, now_ms, ticks)
            self._schedule(conversation_id, entry)
        return ticks

    def _check(self, conversation_id: str, entry: Entry, now_ms: int, ticks: list[tuple[str, Tick]]) -> None:
        since = entry.waiting_since
        if since is None:
            return
        policy = self._policy(entry.shop_id)
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


def next_due(entry: Entry, policy: TimingPolicy) -> int | None:
    """When the next waiting threshold of ``entry`` falls due (ms), or None when all have been sent."""
    since = entry.waiting_since
    if since is None:
        return None
    candidates = []
    if entry.level_sent < 1:
        candidates.append(since + math.ceil(policy.waiting_warning_s * 1000))
    elif entry.level_sent < 2:
        candidates.append(since + math.ceil(policy.waiting_critical_s * 1000))
    if not entry.shown_sent:
        candidates.append(since + math.ceil(policy.board_from_s * 1000))
    if not entry.gone_sent:
        candidates.append((entry.last_customer_ms or since) + math.ceil(policy.customer_gone_s * 1000))
    return min(candidates) if candidates else None
