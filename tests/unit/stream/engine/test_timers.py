"""The timer index: which ticks are due, and only once."""

from __future__ import annotations

from detectors.timing_policy import TimingPolicy
from stream.engine.records import Tick
from stream.engine.state import ConversationState, Waiting
from stream.engine.timers import RESEND_MS, ConversationIndex

T0 = 1_795_000_000_000


def state(status: str = "open", since: int | None = None, level: int = 0, last: int = T0,
          closed_at: int | None = None, shop: str = "s1", customer: int | None = None) -> ConversationState:
    return ConversationState("c", shop, 0, status=status, waiting=Waiting(since=since, level=level),
                             last_arrival_ms=last, closed_at=closed_at, last_customer_ms=customer or since)


def index(**policies: TimingPolicy) -> ConversationIndex:
    return ConversationIndex(lambda shop: policies.get(shop, TimingPolicy()))


def test_waiting_ticks_fire_once_per_level() -> None:
    idx = index()
    idx.observe("c1", state(since=T0))
    assert idx.waiting_ticks(T0 + 14_999) == []
    assert idx.waiting_ticks(T0 + 15_000) == [("c1", Tick("board", T0))]  # onto the board, no alert
    assert idx.waiting_ticks(T0 + 29_999) == []
    assert idx.waiting_ticks(T0 + 30_000) == [("c1", Tick("waiting", T0, 1))]
    assert idx.waiting_ticks(T0 + 45_000) == []
    assert idx.waiting_ticks(T0 + 60_000) == [("c1", Tick("waiting", T0, 2))]
    idx.observe("c1", state(since=T0, level=1))  # the pipeline applied the first tick: no repeat
    assert idx.waiting_ticks(T0 + 70_000) == []
    assert idx.waiting_ticks(T0 + 300_000) == [("c1", Tick("gone", T0))]  # silent for customer_gone_s
    assert idx.waiting_ticks(T0 + 400_000) == []
    idx.observe("c1", state(since=None))  # answered
    assert idx.waiting_ticks(T0 + 90_000) == [] and "c1" not in idx.waiting


def test_a_new_waiting_episode_starts_from_level_zero() -> None:
    idx = index()
    idx.observe("c1", state(since=T0, level=2))
    idx.observe("c1", state(since=T0 + 100_000))
    assert idx.waiting_ticks(T0 + 130_000) == [("c1", Tick("waiting", T0 + 100_000, 1))]


def test_shops_have_their_own_thresholds() -> None:
    idx = index(fast=TimingPolicy(waiting_warning_s=5, waiting_critical_s=10))
    idx.observe("slow", state(since=T0))
    idx.observe("fast", state(since=T0, shop="fast"))
    assert [(c, t.level) for c, t in idx.waiting_ticks(T0 + 10_000) if t.kind == "waiting"] == [("fast", 2)]


def test_housekeeping_closes_quiet_conversations_and_purges_old_closed_ones() -> None:
    idx = index()
    idx.observe("open", state(last=T0))
    idx.observe("closed", state(status="closed", closed_at=T0))
    assert idx.housekeeping_ticks(T0 + 599_000) == []
    assert idx.housekeeping_ticks(T0 + 600_000) == [("open", Tick("close"))]
    assert idx.housekeeping_ticks(T0 + 601_000) == []  # sent; not again before RESEND_MS
    assert [c for c, _ in idx.housekeeping_ticks(T0 + 600_000 + RESEND_MS)] == ["open"]
    # the close was never applied here, so it is asked for again, with the purge
    due = idx.housekeeping_ticks(T0 + 3_600_000)
    assert [(c, t.kind) for c, t in due] == [("open", "close"), ("closed", "purge")]


def test_resync_drops_conversations_the_table_no_longer_has() -> None:
    idx = index()
    idx.observe("gone", state(since=T0))
    idx.resync([("kept", state())])
    assert set(idx.entries) == {"kept"} and idx.waiting == {}


def test_a_reload_that_lowers_a_threshold_fires_at_the_new_one() -> None:
    policies = {"s1": TimingPolicy()}
    idx = ConversationIndex(lambda shop: policies[shop])
    idx.observe("c1", state(since=T0))
    assert idx.waiting_ticks(T0 + 15_000) == [("c1", Tick("board", T0))]
    policies["s1"] = TimingPolicy(waiting_warning_s=20, waiting_critical_s=25)  # a live rule reload
    assert idx.waiting_ticks(T0 + 20_000) == [("c1", Tick("waiting", T0, 1))]
    assert idx.waiting_ticks(T0 + 25_000) == [("c1", Tick("waiting", T0, 2))]


def test_fractional_thresholds_fire_once_without_spinning() -> None:
    idx = index(s1=TimingPolicy(board_from_s=0.0015, waiting_warning_s=0.0025, waiting_critical_s=1.0005))
    idx.observe("c1", state(since=T0))
    assert idx.waiting_ticks(T0 + 1) == []
    assert idx.waiting_ticks(T0 + 2) == [("c1", Tick("board", T0))]
    assert idx.waiting_ticks(T0 + 3) == [("c1", Tick("waiting", T0, 1))]
    assert idx.waiting_ticks(T0 + 1000) == []
    assert idx.waiting_ticks(T0 + 1001) == [("c1", Tick("waiting", T0, 2))]


def test_answered_conversations_leave_the_heap_bounded() -> None:
    idx = index()
    for n in range(20_000):  # every customer answered before the board: each leaves a stale heap item
        idx.observe(f"c{n}", state(since=T0 + n))
        idx.observe(f"c{n}", state(since=None))
    assert idx.scheduled == {} and len(idx._heap) <= 1024 + 1
    assert idx.waiting_ticks(T0 + 10_000_000) == []


def test_a_scan_looks_only_at_what_is_due() -> None:
    looked: list[str] = []
    idx = ConversationIndex(lambda shop: looked.append(shop) or TimingPolicy())  # type: ignore[func-returns-value]
    for n in range(1000):
        idx.observe(f"c{n}", state(since=T0 + n * 1000))
    looked.clear()
    ticks = idx.waiting_ticks(T0 + 15_000 + 2_000)  # three conversations have waited 15 s
    assert sorted(c for c, _ in ticks) == ["c0", "c1", "c2"]
    assert len(looked) <= 1  # the reload check asks once per shop, not once per waiting conversation
