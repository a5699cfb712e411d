"""The response-time engine on scripted conversations, with exact expected figures."""

from __future__ import annotations

import random

import pytest

from detectors import RuleBook, load_ruleset, parse_ruleset
from detectors.timing_policy import TimingPolicy
from stream.engine.turns import Entry, replay
from tests.factories import T0, Run, ev

CONSECUTIVE = [ev("c1", "customer", 0, "在吗"), ev("c2", "customer", 5, "这个有货吗"), ev("a1", "agent", 12),
               ev("c3", "customer", 20, "什么时候发货"), ev("a2", "agent", 50, "请您稍等，今天发货"),
               ev("c4", "customer", 60), ev("c5", "customer", 61), ev("a3", "agent", 100, "谢谢您")]


def test_consecutive_customer_messages_form_one_turn() -> None:
    metrics = Run().feed(*CONSECUTIVE).end(110)["metrics"]
    assert metrics["first_response_s"] == 12.0 and metrics["first_response_points"] == 6
    assert metrics["response_times_s"] == [12.0, 30.0, 40.0]
    assert metrics["avg_response_s"] == pytest.approx(27.333, abs=1e-3) and metrics["avg_response_points"] == 10
    assert (metrics["turns"], metrics["answered_turns"], metrics["reply_rate"], metrics["reply_rate_points"]) == (
        3, 3, 1.0, 10)
    assert metrics["messages"] == {"customer": 5, "agent": 3, "bot": 0}


def test_out_of_order_and_duplicate_events_give_the_same_figures() -> None:
    expected = Run().feed(*CONSECUTIVE).end(110)
    c1, c2, a1, c3, a2, c4, c5, a3 = CONSECUTIVE
    # within the 10 s window: swapped neighbours, and two events delivered twice
    arrivals = [c2, c1, c3, a1, c1, a2, c5, c4, a3, a2]
    run = Run()
    for event in arrivals:
        run.feed(event, now_s=105)
    got = run.end(110)
    assert got["metrics"] == expected["metrics"]
    assert got["late_events"] == 0
    assert sum(o.duplicate for o in run.outcomes) == 2
    # any shuffle inside the window gives the same figures (events 10 s apart or more keep their order)
    for seed in range(20):
        rng = random.Random(seed)
        shuffled = sorted(CONSECUTIVE, key=lambda e: (e.ts_ms // 10_000) * 10_000 + rng.random() * 9_999)
        assert Run().feed(*shuffled, now_s=105).end(110)["metrics"] == expected["metrics"]


def test_an_event_later_than_the_window_still_counts_and_is_flagged() -> None:
    run = Run().feed(ev("c1", "customer", 0), ev("a1", "agent", 8), ev("c2", "customer", 40), ev("a2", "agent", 70))
    run.feed(ev("c0", "customer", 30, "补一句"))  # 40 s behind the newest event: late
    final = run.end(80)
    assert final["late_events"] == 1
    assert final["metrics"]["response_times_s"] == [8.0, 40.0]  # the late message opened the second turn
    assert [line.message_id for line in run.lines if line.late] == ["c0"]
    assert final["metrics"]["first_customer_ms"] == T0


def test_transfer_gap_is_measured_on_its_own_and_the_new_agent_owns_the_conversation() -> None:
    run = Run().feed(ev("c1", "customer", 0), ev("a1", "agent", 5, agent="A"), ev("c2", "customer", 10),
                     ev("t1", "system", 20, "", etype="transferred", agent="B"))
    owner_changed = run.snapshots[-1]  # the wait (10 s) is not on the board yet, but it is B's from the transfer
    assert (owner_changed["status"], owner_changed["agent_id"], owner_changed["waiting_since_ms"]) == (
        "open", "B", T0 + 20_000)
    board = run.tick("board", 36, since=T0 + 20_000).snapshots  # 16 s into B's wait: the board
    assert [(s["status"], s["agent_id"]) for s in board] == [("waiting", "B")]
    run.feed(ev("b1", "agent", 35, "您好，我是售后专员", agent="B"), ev("c3", "customer", 40),
             ev("b2", "agent", 46, "请您稍等", agent="B"))
    metrics = run.end(50)["metrics"]
    assert metrics["transfers"] == [{"ts_ms": T0 + 20_000, "from_agent": "A", "to_agent": "B", "gap_s": 15.0}]
    assert metrics["response_times_s"] == [5.0, 6.0] and metrics["response_agents"] == ["A", "B"]
    assert (metrics["turns"], metrics["answered_turns"]) == (3, 3)
    assert metrics["owner"] == "B" and metrics["agents"] == ["A", "B"]


def test_bot_replies_are_not_responses_unless_the_shop_says_so() -> None:
    events = [ev("c1", "customer", 0), ev("r1", "bot", 1, "自动回复：客服马上来"), ev("a1", "agent", 8)]
    assert Run().feed(*events).end(9)["metrics"]["first_response_s"] == 8.0
    document = dict(load_ruleset().document)
    document["shops"] = {"s1": {"timing": {"bot_counts_as_response": True}}}
    book = RuleBook(parse_ruleset(document))
    assert Run(book).feed(*events).end(9)["metrics"]["first_response_s"] == 1.0


def test_waiting_alert_warns_escalates_and_clears_under_one_alert_id() -> None:
    run = Run().feed(ev("a0", "agent", 0, "您好，在的"), ev("c1", "customer", 2, "人呢？"))
    since = T0 + 2000
    assert run.snapshots[-1]["status"] == "open"  # a customer waiting 0 s is not on the board
    board = run.tick("board", 17.1, since=since)
    assert board.alerts == [] and [s["status"] for s in board.snapshots] == ["waiting"]
    assert run.tick("waiting", 32.1, since=since, level=1).alerts[0].severity == "warning"
    assert run.tick("waiting", 32.3, since=since, level=1).alerts == []  # the same tick twice: nothing new
    assert run.tick("waiting", 45, since=since - 1, level=2).alerts == []  # a stale episode: nothing
    critical = run.tick("waiting", 62.2, since=since, level=2).alerts[0]
    run.feed(ev("a1", "agent", 70, "抱歉久等了"))
    warning, cleared = run.alerts[0], run.alerts[-1]
    assert warning.alert_id == critical.alert_id == cleared.alert_id
    assert [(a.revision, a.severity, a.state) for a in (warning, critical, cleared)] == [
        (1, "warning", "open"), (2, "critical", "open"), (3, "critical", "cleared")]
    assert warning.detail["waited_s"] == 30.1 and cleared.detail["waited_s"] == 68.0
    assert warning.agent_id == "A" and warning.excerpt == "人呢？"
    assert run.snapshots[-1]["status"] == "open" and run.snapshots[-1]["waiting_since_ms"] is None


def test_inactivity_closes_the_conversation_with_an_unanswered_question() -> None:
    run = Run().feed(ev("c1", "customer", 0), ev("a1", "agent", 4, "您好，请问有什么可以帮您"),
                     ev("c2", "customer", 10, "还能便宜吗"))
    assert run.tick("close", 10.2 + 599).snapshots == []  # not yet ten minutes
    outcome = run.tick("close", 10.2 + 600)
    (final,) = outcome.snapshots
    assert (final["status"], final["close_reason"], final["final"]) == ("closed", "inactivity", True)
    assert final["metrics"]["reply_rate"] == 0.5 and final["metrics"]["reply_rate_points"] == 0
    assert [a.rule for a in outcome.alerts] == ["unanswered_at_end"]
    assert outcome.alerts[0].message_id == "c2" and outcome.alerts[0].detail["close_reason"] == "inactivity"
    assert final["checks"]["greeting"] is True and final["checks"]["closing"] is False
    assert final["waiting_since"] is None and all(not line.marks for line in run.lines)
    assert {f["label"] for f in final["checks"]["findings"]} == {"missing_closing"}
    # a closed conversation is forgotten after the retention period, not before
    assert run.tick("purge", 610.2 + 3599).delete is False
    assert run.tick("purge", 610.2 + 3600).delete is True


def test_after_sales_teams_use_their_own_average_tiers() -> None:
    document = dict(load_ruleset().document)
    document["timing"] = {**document["timing"], "after_sales_teams": ["after"]}
    book = RuleBook(parse_ruleset(document))
    events = [ev("c1", "customer", 0, team="after"), ev("a1", "agent", 45, team="after")]
    metrics = Run(book).feed(*events).end(50)["metrics"]
    assert metrics["after_sales"] and metrics["avg_response_points"] == 5  # 30–60 s tier of 售后
    assert Run().feed(*events).end(50)["metrics"]["avg_response_points"] == 3  # 40–50 s tier


def test_a_message_after_the_close_reopens_the_conversation() -> None:
    run = Run().feed(ev("c1", "customer", 0), ev("a1", "agent", 3))
    run.end(5)
    run.feed(ev("c2", "customer", 100, "还有个问题"))
    assert run.state is not None and run.state.status == "open"
    assert run.snapshots[-1]["status"] == "open" and run.snapshots[-1]["waiting_since_ms"] == T0 + 100_000


def test_transcript_lines_carry_texts_and_findings_and_the_summary_counts_them() -> None:
    run = Run().feed(ev("c1", "customer", 0, "我要投诉"), ev("a1", "agent", 5, "哦，好的"))
    final = run.end(9)
    assert [(line.message_id, line.sender, line.text) for line in run.lines] == [
        ("c1", "customer", "我要投诉"), ("a1", "agent", "哦，好的"), ("end-9", "ended", "")]
    assert [[(m.label, m.start, m.end) for m in line.marks] for line in run.lines[:2]] == [
        [("customer_anger", 2, 4)], [("banned_word", 0, 1)]]
    assert final["labels"] == {"customer_anger": 1, "banned_word": 1}
    assert "transcript" not in final and run.state is not None and len(run.state.to_json()) < 2048


def test_each_answer_in_the_transcript_carries_its_response_time() -> None:
    run = Run().feed(ev("c1", "customer", 0), ev("c2", "customer", 3), ev("a1", "agent", 9), ev("a2", "agent", 10),
                     ev("c3", "customer", 20), ev("t", "system", 25, "", etype="transferred", agent="B"),
                     ev("b1", "agent", 31, agent="B"))
    run.end(40)
    entries = [Entry(line.ts_ms, line.seq, line.kind, line.agent_id, line.message_id) for line in run.lines]
    _, replies = replay(list(reversed(entries)), TimingPolicy())  # the stored transcript, in any order
    assert {mid: ms / 1000 for mid, ms in replies.items()} == {
        "a1": 9.0, "b1": 6.0}  # a2 answered nothing new; b1 closed the turn across the transfer: its gap
