"""Per-event cost and state independent of a conversation's length, and the edge cases of the incremental
turn machine: the tail cap, late answers, events after a close, a reopen, the id ring."""

from __future__ import annotations

import random

from detectors.timing_policy import TimingPolicy
from stream.engine.conversation import process_event
from stream.engine.records import Tick
from stream.engine.state import RING, ConversationState
from stream.engine.turns import AGENT, BOT, CUSTOMER, TAIL_MAX, Entry, Timeline, replay
from tests.factories import T0, Run, ev


def thousand() -> list:
    events = []
    for i in range(1000):
        sender = "customer" if i % 3 == 0 else "agent"
        events.append(ev(f"m{i}", sender, i * 4.0, "在吗" if sender == "customer" else "您好，请您稍等"))
    return events


def test_a_thousand_message_conversation_in_any_order_inside_the_window_gives_the_same_figures() -> None:
    events = thousand()
    expected = Run().feed(*events).end(4100)
    rng = random.Random(5)
    # events shuffled inside 9 s blocks: every event arrives inside the reorder window of the newest one
    shuffled = sorted(events, key=lambda e: (e.ts_ms // 9_000) * 9_000 + rng.random() * 8_999)
    run = Run().feed(*shuffled, now_s=4050)
    got = run.end(4100)
    assert got["metrics"] == expected["metrics"] and got["late_events"] == 0
    assert got["metrics"]["turns"] == 334 and got["metrics"]["answered_turns"] == 333  # the last question waits
    assert run.state is not None and len(run.state.to_json()) < 2048  # small whatever the length
    assert len(run.lines) == 1001  # every event still reaches the transcript


def test_events_settled_early_by_the_tail_cap_make_an_older_arrival_late_not_misplaced() -> None:
    policy = TimingPolicy()
    timeline = Timeline()
    timeline.add(Entry(T0 + 1000, 1, AGENT, "a", "a1"), policy)
    for i in range(TAIL_MAX + 2):  # bursts of bot messages push the agent answer out of the tail early
        timeline.add(Entry(T0 + 1100 + i * 10, 2 + i, BOT, None, f"b{i}"), policy)
    late, _ = timeline.add(Entry(T0, 99, CUSTOMER, None, "c1"), policy)
    assert late  # flagged: its place is behind events already settled


def test_a_first_response_found_by_a_late_customer_message_is_credited_and_alerted() -> None:
    run = Run().feed(ev("a1", "agent", 40, "您好，在的"), ev("c1", "customer", 0, "在吗"), now_s=41)
    assert [(a.rule, a.message_id) for a in run.alerts] == [("slow_first_response", "a1")]
    credits = [c for o in run.outcomes for c in o.credits if c.first_response_ms is not None]
    assert [(c.agent_id, c.first_response_ms) for c in credits] == [("A", 40_000)]


def test_an_event_from_before_the_close_arriving_after_it_does_not_reopen_or_score_twice() -> None:
    run = Run().feed(ev("c1", "customer", 0), ev("a1", "agent", 5, "您好，请问有什么可以帮您"))
    run.end(20)
    run.feed(ev("a2", "agent", 19.9, "祝您生活愉快"), now_s=21)  # the goodbye, delivered late
    assert run.state is not None and run.state.status == "closed"
    assert sum(1 for s in run.snapshots if s["final"]) == 1
    days = [c for o in run.outcomes for c in o.credits if c.day is not None]
    assert [c.conversations for c in days] == [1]
    assert [line.message_id for line in run.lines if line.late] == ["a2"]


def test_a_reopened_conversation_waits_anew_and_keeps_one_conversation_on_the_agents_day() -> None:
    run = Run().feed(ev("c1", "customer", 0), ev("a1", "agent", 5, "您好"), ev("c2", "customer", 10, "还有吗"))
    run.tick("close", 10.2 + 600)  # closed by inactivity on an unanswered question
    run.feed(ev("c3", "customer", 86_400, "在吗？"))  # the next day
    assert run.state is not None and run.state.waiting.since == T0 + 86_400_000  # a new wait, not yesterday's
    run.feed(ev("a2", "agent", 86_410, "您好，抱歉久等"))
    run.tick("close", 86_410.2 + 600)
    days = [c for o in run.outcomes for c in o.credits if c.day is not None]
    assert [c.conversations for c in days] == [1, 0]  # the second close only changes the score


def test_a_late_earlier_customer_message_does_not_clear_the_wait() -> None:
    run = Run().feed(ev("a0", "agent", 0, "您好"), ev("c2", "customer", 20, "人呢"))
    since = T0 + 20_000
    run.tick("waiting", 50.1, since=since, level=1)
    run.feed(ev("c1", "customer", 15, "在吗"), now_s=50.5)  # written earlier, arrives now
    assert [a.state for a in run.alerts] == ["open"]  # no false "cleared"
    assert run.state is not None and run.state.waiting.since == since and run.state.waiting.level == 1


def test_the_id_ring_recognises_the_last_events_exactly() -> None:
    state: ConversationState | None = None
    for i in range(RING + 5):
        state = process_event(state, ev(f"x{i}", "customer", i), now_ms=T0 + 10_000_000).state
    assert state is not None
    assert all(state.seen(f"x{i}") for i in range(5, RING + 5)) and not state.seen("x0")
    assert ConversationState.from_json(state.to_json()).ring == state.ring


def test_the_stored_transcript_gives_exact_response_times_in_any_order() -> None:
    entries = [Entry(T0 + ms, n, kind, "A" if kind == AGENT else None, f"e{n}")
               for n, (ms, kind) in enumerate([(0, CUSTOMER), (3000, CUSTOMER), (9000, AGENT), (20_000, CUSTOMER),
                                               (50_000, AGENT)])]
    machine, replies = replay(list(reversed(entries)), TimingPolicy())
    assert replies == {"e2": 9000, "e4": 30_000} and machine.turns == 2


def test_gone_quiet_can_be_flagged_again_after_the_customer_writes() -> None:
    from stream.engine.timers import ConversationIndex

    run = Run().feed(ev("a0", "agent", 0, "您好"), ev("c1", "customer", 10, "在吗"))
    index = ConversationIndex(lambda _shop: TimingPolicy())
    assert run.state is not None
    index.observe("c1", run.state)
    assert ("c1", Tick("gone", T0 + 10_000)) in index.waiting_ticks(T0 + 310_000)
    run.tick("gone", 310, since=T0 + 10_000)
    run.feed(ev("c2", "customer", 320, "还在吗"))
    index.observe("c1", run.state)
    assert ("c1", Tick("gone", T0 + 10_000)) in index.waiting_ticks(T0 + 620_000)
