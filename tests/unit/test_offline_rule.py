"""The 24-hour rule (issue 17, item 5): "客服人员需要在客户提问之后的24小时内作出合适的回复". A question left
while the shop is offline and answered within the shop's limit is answered in time."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from detectors import RuleBook, load_ruleset, parse_ruleset
from detectors.rubric import parse_rubric, rubric_of
from stream.engine.conversation import process_event
from stream.engine.state import ConversationState
from zhijian.core.contract import ChatEvent
from zhijian.scoring import findings_of, kpi, rubric_lookup, score_summary
from zhijian.store.app import AppStore

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
NIGHT = int(datetime.datetime(2026, 11, 20, 23, 0, tzinfo=SHANGHAI).timestamp() * 1000)  # 23:00 on the floor
DAY = int(datetime.datetime(2026, 11, 20, 14, 0, tzinfo=SHANGHAI).timestamp() * 1000)  # 14:00
SEED = dict(load_ruleset().rubric)
OFFLINE = rubric_of({**SEED, "offline_hours": [["22:00", "08:00"]]})  # the shop's 留言 hours
ONLINE = rubric_of(SEED)  # the seed: three shifts round the clock, never offline
GREETING, POLITE, CLOSING = "您好，很高兴为您服务", "您好，有货的，请您放心", "感谢您的耐心，祝您生活愉快"


def event(mid: str, sender: str, at_ms: int, text: str = "", *, conv: str = "n1", etype: str = "message",
          agent: str | None = "a09") -> ChatEvent:
    return ChatEvent(message_id=mid, conversation_id=conv, shop_id="s1", team_id="t1", agent_id=agent,
                     customer_id="u1", sender=sender, type=etype, text=text, ts_ms=at_ms)


def summary_of(*events: ChatEvent) -> dict[str, Any]:
    state: ConversationState | None = None
    final: list[dict[str, Any]] = []
    for e in events:
        outcome = process_event(state, e, now_ms=e.ts_ms + 200)
        state = outcome.state
        final.extend(s for s in outcome.snapshots if s.get("final"))
    return final[-1]


def answered_next_morning(start: int, wait_s: int, conv: str = "n1") -> dict[str, Any]:
    return summary_of(event("c1", "customer", start, "还有货吗？", conv=conv),
                      event("a1", "agent", start + wait_s * 1000, GREETING, conv=conv),
                      event("a2", "agent", start + wait_s * 1000 + 5000, CLOSING, conv=conv),
                      event("end", "system", start + wait_s * 1000 + 9000, etype="conversation_ended", agent=None,
                            conv=conv))


def sections(score: Any) -> dict[str, Any]:
    return {s["section"]: s["points"] for s in score.breakdown}


def test_offline_hours_are_parsed_and_cross_midnight() -> None:
    assert OFFLINE.offline(NIGHT) and not OFFLINE.offline(DAY)
    assert not ONLINE.offline(NIGHT)
    shifts_only = rubric_of({**SEED, "shifts": [["早班", "08:00", "16:00"], ["晚班", "16:00", "22:00"]]})
    assert shifts_only.offline(NIGHT) and not shifts_only.offline(DAY)  # outside every shift
    with pytest.raises(ValueError):
        parse_rubric({**SEED, "offline_reply_s": 0})


def test_an_overnight_question_answered_next_morning_is_in_time() -> None:
    summary = answered_next_morning(NIGHT, 9 * 3600 + 30 * 60)  # 23:00 → 08:30
    assert summary["metrics"]["first_response_s"] == 34_200.0
    online = score_summary(summary, ONLINE)
    # without the rule (the seed, never offline): first response 34 200 s → 0, average 34 200 s → 0, reply
    # rate 1/1 → 10; greeting, closing, 2/2 polite → 30; 服务态度 30, 流程规范 10: 30 + 30 + 10 + 10 = 80
    assert sections(online) == {"服务态度": 30, "服务用语": 30, "响应时效": 10, "流程规范": 10}
    assert online.score == 80.0
    offline = score_summary(summary, OFFLINE)
    # offline and answered within 24 h: first response 10, average 10 (its only answer is in time): 100
    assert sections(offline) == {"服务态度": 30, "服务用语": 30, "响应时效": 30, "流程规范": 10}
    assert offline.score == 100.0


def test_the_same_wait_by_day_or_beyond_24_hours_still_costs() -> None:
    assert score_summary(answered_next_morning(DAY, 9 * 3600), OFFLINE).score == 80.0  # online: no excuse
    late = answered_next_morning(NIGHT, 25 * 3600)
    # 25 h > 24 h: first 0, average 0, reply rate 10 → 响应时效 10: 80
    assert score_summary(late, OFFLINE).score == 80.0


def test_an_overnight_question_closed_unanswered_is_pending_not_a_missed_reply() -> None:
    summary = summary_of(event("c1", "customer", NIGHT, "在吗？明天发货吗？"),
                         event("end", "system", NIGHT + 600_000, etype="conversation_ended", agent=None))
    # online (seed): no greeting/closing/politeness (0 of 20 + 5 + 5), no response (0 + 0), reply rate 0,
    # 回复中断 −10: 30 + 0 + 0 + 0 = 30
    assert score_summary(summary, ONLINE).score == 30.0
    assert {f["label"] for f in findings_of(summary, OFFLINE)} == set()
    pending = score_summary(summary, OFFLINE)
    # offline, inside its 24 hours: nothing is missed yet — every item in full, 100, marked pending
    assert (pending.score, pending.offline_pending) == (100.0, True)
    assert sections(pending) == {"服务态度": 30, "服务用语": 30, "响应时效": 30, "流程规范": 10}


def test_response_starts_in_the_summary_exempt_only_the_offline_answers() -> None:
    summary = answered_next_morning(NIGHT, 9 * 3600)
    metrics = summary["metrics"]
    # a second turn by day, answered in 45 s, as the summary would list it with each turn's start
    metrics["response_times_s"] = [32_400.0, 45.0]
    metrics["response_starts_ms"] = [NIGHT, DAY + 86_400_000]
    metrics["avg_response_points"] = 0
    # first response offline in time → 10; average over the daytime answer only: 45 s → 3 (tier ≤ 50 s);
    # reply rate 10: 响应时效 23, total 93
    score = score_summary(summary, OFFLINE)
    assert {s["section"]: s["items"] for s in score.breakdown}["响应时效"] == {
        "first_response": 10, "avg_response": 3, "reply_rate": 10}
    assert score.score == 93.0


def test_offline_hours_per_shop_and_the_reply_rate(store: AppStore) -> None:
    document = dict(load_ruleset().document)
    document["shops"] = {"s1": {"rubric": {"offline_hours": [["22:00", "08:00"]], "offline_reply_s": 43_200}}}
    lookup = rubric_lookup(RuleBook(parse_ruleset(document)))
    assert lookup("s1").offline(NIGHT) and not lookup("other").offline(NIGHT)
    assert lookup("s1").offline_reply_s == 43_200 and lookup("other").offline_reply_s == 86_400
    pending = summary_of(event("c1", "customer", NIGHT, "在吗？", conv="p1"),
                         event("end", "system", NIGHT + 600_000, etype="conversation_ended", agent=None, conv="p1"))
    answered = answered_next_morning(NIGHT + 60_000, 600, conv="p2")
    store.save_scored([pending, answered], lookup)
    board = kpi.scoreboard(store.scored_rows(lookup("s1").day(NIGHT)))
    # the pending question is not counted as 咨询 yet: 1 asked, 1 answered
    assert [(a["agent_id"], a["inquiries"], a["answered_inquiries"], a["reply_rate"]) for a in board] == [
        ("a09", 1, 1, 1.0)]
    assert store.findings_for(conversation_id="p1") == []
