"""The conversation pipeline, list in / list out, without a broker."""

from typing import Any

from stream.pipeline import first_response_points, process_event
from zhijian.contract import ChatEvent

T0 = 1_795_000_000_000


def ev(mid: str, sender: str, text: str = "", ts_s: float = 0.0, etype: str = "message",
       conv: str = "c1", agent: str | None = "a1") -> ChatEvent:
    return ChatEvent(message_id=mid, conversation_id=conv, shop_id="s1", team_id="t1",
                     agent_id=agent, customer_id="u1", sender=sender,
                     type=etype, text=text, ts_ms=T0 + int(ts_s * 1000))


def run(events: list[ChatEvent]) -> tuple[dict[str, Any] | None, list[Any], list[Any], int]:
    state = None
    alerts: list[Any] = []
    activity: list[Any] = []
    duplicates = 0
    for event in events:
        outcome = process_event(state, event, now_ms=T0 + 100_000)
        state = outcome.state
        alerts += outcome.alerts
        activity += outcome.activity
        duplicates += outcome.duplicate
    return state, alerts, activity, duplicates


def test_first_response_time_and_tier_points() -> None:
    state, alerts, activity, _ = run([ev("m1", "customer", "在吗", 0), ev("m2", "customer", "人呢", 5),
                                      ev("m3", "agent", "您好，请问有什么可以帮您", 12.5)])
    assert state is not None and state["first_response_ms"] == 12_500
    assert alerts == []
    assert activity[0]["first_response_ms"] == 12_500
    assert [first_response_points(s) for s in (10, 10.01, 20, 25, 25.01)] == [10, 6, 6, 3, 0]


def test_slow_first_response_raises_an_alert() -> None:
    _, alerts, _, _ = run([ev("m1", "customer", "在吗", 0), ev("m2", "agent", "您好", 31)])
    assert [(a.rule, a.severity, a.detail["first_response_s"], a.detail["points"]) for a in alerts] == [
        ("slow_first_response", "warning", 31.0, 0)]


def test_bot_replies_do_not_count_as_first_response() -> None:
    state, _, _, _ = run([ev("m1", "customer", "在吗", 0), ev("m2", "bot", "自动回复：稍等", 1),
                          ev("m3", "agent", "您好", 8)])
    assert state is not None and state["first_response_ms"] == 8_000


def test_banned_word_alert_carries_the_contract_fields() -> None:
    _, alerts, _, _ = run([ev("m1", "customer", "这个有货吗", 0), ev("m2", "agent", "哦，这个不知道", 3)])
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
    assert len({a.alert_id for a in run(events)[1]}) == 3


def test_customer_messages_are_not_checked_for_banned_words() -> None:
    _, alerts, activity, _ = run([ev("m1", "customer", "哦，你们怎么回事啊", 0)])
    assert alerts == [] and activity == []


def test_conversation_end_is_recorded() -> None:
    state, _, _, _ = run([ev("m1", "customer", "在吗", 0), ev("m9", "system", "", 9, etype="conversation_ended")])
    assert state is not None and state["ended"] is True
