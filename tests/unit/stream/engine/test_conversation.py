"""The conversation engine, list in / list out, without a broker."""

from typing import Any

from detectors.timing_policy import TimingPolicy, seconds_points
from stream.engine.conversation import process_event
from stream.engine.state import ConversationState
from zhijian.core.contract import ChatEvent

T0 = 1_795_000_000_000


def ev(mid: str, sender: str, text: str = "", ts_s: float = 0.0, etype: str = "message",
       conv: str = "c1", agent: str | None = "a1") -> ChatEvent:
    return ChatEvent(message_id=mid, conversation_id=conv, shop_id="s1", team_id="t1",
                     agent_id=agent, customer_id="u1", sender=sender,
                     type=etype, text=text, ts_ms=T0 + int(ts_s * 1000))


def run(events: list[ChatEvent]) -> tuple[ConversationState | None, list[Any], list[Any], int]:
    state = None
    alerts: list[Any] = []
    activity: list[Any] = []
    duplicates = 0
    for event in events:
        outcome = process_event(state, event, now_ms=T0 + 100_000)
        state = outcome.state
        alerts += outcome.alerts
        activity += outcome.credits
        duplicates += outcome.duplicate
    return state, alerts, activity, duplicates


def test_first_response_time_and_tier_points() -> None:
    state, alerts, activity, _ = run([ev("m1", "customer", "在吗", 0), ev("m2", "customer", "人呢", 5),
                                      ev("m3", "agent", "您好，请问有什么可以帮您", 12.5)])
    assert state is not None and state.timeline.current.first_response_ms == 12_500
    assert alerts == []
    assert activity[0].first_response_ms == 12_500
    tiers = TimingPolicy().first_response_tiers
    assert [seconds_points(s, tiers) for s in (10, 10.01, 20, 25, 25.01)] == [10, 6, 6, 3, 0]


def test_slow_first_response_raises_an_alert() -> None:
    _, alerts, _, _ = run([ev("m1", "customer", "在吗", 0), ev("m2", "agent", "您好", 31)])
    assert [(a.rule, a.severity, a.detail["first_response_s"], a.detail["points"]) for a in alerts] == [
        ("slow_first_response", "warning", 31.0, 0)]


def test_bot_replies_do_not_count_as_first_response() -> None:
    state, _, _, _ = run([ev("m1", "customer", "在吗", 0), ev("m2", "bot", "自动回复：稍等", 1),
                          ev("m3", "agent", "您好", 8)])
    assert state is not None and state.timeline.current.first_response_ms == 8_000


def test_banned_word_alert_carries_the_contract_fields() -> None:
    _, alerts, _, _ = run([ev("m1", "customer", "这个有货吗", 0), ev("m2", "agent", "哦，这个有货的", 3)])
    (alert,) = alerts
    assert alert.rule == "banned_word" and alert.severity == "critical"
    assert (alert.conversation_id, alert.agent_id, alert.team_id, alert.message_id) == ("c1", "a1", "t1", "m2")
    assert alert.excerpt[alert.span[0]:alert.span[1]] == "哦"
    assert alert.ts_ms == T0 + 3000 and alert.ts.endswith("+00:00") and alert.detected_at


def test_duplicates_by_message_id_are_dropped() -> None:
    first = ev("m2", "agent", "哦", 3)
    _, alerts, activity, duplicates = run([ev("m1", "customer", "在吗", 0), first, first, first])
    assert len(alerts) == 1 and len(activity) == 1 and duplicates == 2


def test_alert_ids_are_deterministic_across_reprocessing() -> None:
    events = [ev("m1", "customer", "在吗", 0), ev("m2", "agent", "嗯嗯，哦", 40)]
    assert [a.alert_id for a in run(events)[1]] == [a.alert_id for a in run(events)[1]]
    assert len({a.alert_id for a in run(events)[1]}) == 2  # slow first response + one banned_word


def test_customer_messages_are_not_checked_for_banned_words() -> None:
    _, alerts, activity, _ = run([ev("m1", "customer", "哦，好的啊，那我等等", 0)])  # particles, nothing else
    assert alerts == [] and activity == []


def test_repeats_of_a_rule_are_throttled_per_conversation_but_all_counted() -> None:
    events = [ev("m1", "customer", "在吗", 0), ev("m2", "agent", "好的哦", 2), ev("m3", "agent", "稍等哦", 30),
              ev("m4", "agent", "嗯，可以", 60), ev("m5", "agent", "好的哦", 400)]
    _, alerts, activity, _ = run(events)
    banned = [a for a in alerts if a.rule == "banned_word"]
    # seed throttle for banned_word is 300 s: m2 alerts, m3 and m4 are counted only, m5 alerts again
    assert [a.message_id for a in banned] == ["m2", "m5"]
    assert [a.detail["repeats_since_last_alert"] for a in banned] == [0, 2]
    assert [c.rules for c in activity] == [["banned_word"]] * 4
    assert all(a.detail["ruleset"] == "seed-2026.11" for a in banned)


def test_an_angry_customer_raises_an_alert_on_the_agents_conversation() -> None:
    events = [ev("m1", "customer", "在吗", 0), ev("m2", "agent", "您好", 3),
              ev("m3", "customer", "我要投诉你们", 10, agent=None), ev("m4", "customer", "差评返现是真的吗", 20)]
    _, alerts, activity, _ = run(events)
    assert [(a.rule, a.message_id, a.agent_id, a.severity) for a in alerts] == [
        ("customer_anger", "m3", "a1", "warning")]
    assert len(activity) == 1  # a customer's anger is not counted against the agent


def test_a_live_rule_change_applies_to_the_next_message() -> None:
    from detectors import RuleBook, load_ruleset, parse_ruleset

    book = RuleBook(load_ruleset())
    state = process_event(None, ev("m1", "agent", "亲爱的，少啰嗦", 0), now_ms=T0, book=book)
    assert state.alerts == []
    changed = dict(book.ruleset.document, revision=2, version="r2")
    changed["rules"] = [*changed["rules"], {"id": "conflict.local", "label": "conflict", "terms": ["少啰嗦"],
                                            "severity": "critical", "throttle_s": 0}]
    assert book.replace(parse_ruleset(changed))
    after = process_event(state.state, ev("m2", "agent", "少啰嗦", 1), now_ms=T0, book=book)
    assert [(a.rule, a.detail["ruleset"]) for a in after.alerts] == [("conflict", "r2")]


def test_a_review_only_finding_reaches_the_transcript_but_neither_the_score_nor_the_wall() -> None:
    # the model scores this conflict between its review and alert thresholds: QA queue only
    text = "那您看着办"  # with the shipped weights: conflict 0.73, between review 0.34 and alert 0.81
    state, alerts, activity, _ = run([ev("m1", "customer", "在吗", 0), ev("m2", "agent", text, 3)])
    assert state is not None and "conflict" not in state.labels
    assert [a.rule for a in alerts] == [] and activity[0].rules == []
    outcome = process_event(None, ev("m3", "agent", text, 5, conv="c2"), now_ms=T0 + 100_000)
    marks = {mark.label: mark for mark in outcome.lines[0].marks}  # deflection may be queued for review too
    mark = marks["conflict"]
    assert (mark.label, mark.counted, mark.source) == ("conflict", False, "model") and mark.score is not None
    assert all(not other.counted and other.source == "model" for other in marks.values())
