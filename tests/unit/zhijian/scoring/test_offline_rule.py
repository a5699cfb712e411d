"""The 24-hour rule (issue 17, item 5): "客服人员需要在客户提问之后的24小时内作出合适的回复". A question left
while the shop is offline and answered within the shop's limit is answered in time."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from detectors import RuleBook, load_ruleset, parse_ruleset
from detectors.rubric import parse_rubric, rubric_of
from stream.engine.conversation import process_event, process_tick
from stream.engine.records import Tick
from stream.engine.state import ConversationState
from stream.engine.turns import Machine
from zhijian.core.contract import ChatEvent
from zhijian.scoring import findings_of, kpi, offline_of, rubric_lookup, score_summary
from zhijian.store.database import Database

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
NIGHT = int(datetime.datetime(2026, 11, 20, 23, 0, tzinfo=SHANGHAI).timestamp() * 1000)  # 23:00 on the floor
DAY = int(datetime.datetime(2026, 11, 20, 14, 0, tzinfo=SHANGHAI).timestamp() * 1000)  # 14:00
SEED = dict(load_ruleset().rubric)
OFFLINE = rubric_of({**SEED, "offline_hours": [["22:00", "08:00"]]})  # the shop's 留言 hours
ONLINE = rubric_of(SEED)  # the seed: three shifts round the clock, never offline
GREETING, POLITE, CLOSING = "您好，很高兴为您服务", "您好，有货的，请您放心", "感谢您的耐心，祝您生活愉快"


def event(mid: str, sender: str, at_ms: int, text: str = "", *, conv: str = "n1", etype: str = "message",
          agent: str | None = "a09", offline: bool = False) -> ChatEvent:
    return ChatEvent(message_id=mid, conversation_id=conv, shop_id="s1", team_id="t1", agent_id=agent,
                     customer_id="u1", sender=sender, type=etype, text=text, ts_ms=at_ms, offline=offline)


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


EVENING = NIGHT - 2 * 3600_000  # 21:00, the shop still online
MORNING = NIGHT + 9 * 3600_000 + 30 * 60_000  # 08:30 the next day


def three_turns(conv: str = "n3") -> dict[str, Any]:
    """21:00 asked, answered in 5 s; 23:00 asked (offline), answered 08:30 (34 200 s); 08:31 asked, answered in 45 s."""
    return summary_of(event("c1", "customer", EVENING, "在吗？", conv=conv),
                      event("a1", "agent", EVENING + 5_000, GREETING, conv=conv),
                      event("c2", "customer", NIGHT, "还有货吗？", conv=conv),
                      event("a2", "agent", MORNING, POLITE, conv=conv),
                      event("c3", "customer", MORNING + 60_000, "什么时候发货？", conv=conv),
                      event("a3", "agent", MORNING + 105_000, CLOSING, conv=conv),
                      event("end", "system", MORNING + 110_000, etype="conversation_ended", agent=None, conv=conv))


def test_every_offline_turn_answered_within_24_hours_is_exempt_not_only_the_first() -> None:
    summary = three_turns()
    metrics = summary["metrics"]
    assert metrics["response_times_s"] == [5.0, 34_200.0, 45.0]
    assert metrics["response_starts_ms"] == [EVENING, NIGHT, MORNING + 60_000]  # when each answered turn began
    assert metrics["responses"] == 3
    online = score_summary(summary, ONLINE)
    # the seed (never offline): first response 5 s → 10; average (5 + 34 200 + 45) / 3 = 11 416.7 s → 0; reply rate
    # 3/3 → 10: 响应时效 20; 服务态度 30, 服务用语 20 + 5 + 5 = 30, 流程规范 10: 90
    assert sections(online) == {"服务态度": 30, "服务用语": 30, "响应时效": 20, "流程规范": 10}
    offline = score_summary(summary, OFFLINE)
    # the second turn began offline (23:00) and was answered within 24 h: out of the average, which is
    # (5 + 45) / 2 = 25 s → 10 (≤ 30 s); first response 10, reply rate 10: 响应时效 30, total 100
    assert {s["section"]: s["items"] for s in offline.breakdown}["响应时效"] == {
        "first_response": 10, "avg_response": 10, "reply_rate": 10}
    assert offline.score == 100.0


def test_the_starts_survive_the_state_encoding_and_old_states_still_load() -> None:
    state: ConversationState | None = None
    for e in (event("c1", "customer", EVENING, "在吗？", conv="enc"), event("a1", "agent", EVENING + 5_000, GREETING,
              conv="enc"), event("c2", "customer", NIGHT, "还有货吗？", conv="enc"),
              event("a2", "agent", MORNING, POLITE, conv="enc")):
        state = process_event(state, e, now_ms=e.ts_ms + 200).state
    assert state is not None
    back = ConversationState.from_json(state.to_json())
    assert back.timeline.current.response_times == [("a09", 5_000, EVENING), ("a09", 34_200_000, NIGHT)]
    # encoded as differences: the second start is 2 h after the first, not another epoch time
    assert state.timeline.current.to_list()[7] == [["a09", 5_000, EVENING], ["a09", 34_200_000, NIGHT - EVENING]]
    old = state.timeline.current.to_list()
    old[7] = [["a09", 5_000], ["a09", 34_200_000]]  # written before the starts were kept
    assert [start for _, _, start in Machine.from_list(old).response_times] == [None, None]


def test_an_offline_question_never_answered_becomes_a_missed_reply_once_its_24_hours_are_over(
        store: Database, tmp_path: Any) -> None:
    from zhijian.reports.rollup import reissue_stale, run_rollup
    from zhijian.store.offline import expire_offline_pending

    document = dict(load_ruleset().document)
    document["shops"] = {"s1": {"rubric": {"offline_hours": [["22:00", "08:00"]]}}}
    book = RuleBook(parse_ruleset(document))
    lookup = rubric_lookup(book)
    pending = summary_of(event("c1", "customer", NIGHT, "在吗？明天发货吗？", conv="x1"),
                         event("end", "system", NIGHT + 600_000, etype="conversation_ended", agent=None, conv="x1"))
    store.scores.save_scored([pending], lookup)
    day = lookup("s1").day(NIGHT)
    first = run_rollup(store, day, tmp_path, lookup("s1"), book=book)
    assert (first.version, store.scores.get("x1")["score"]) == (1, 100.0)  # pending: nothing missed yet
    deadline = NIGHT + 86_400_000
    assert expire_offline_pending(store, lookup, deadline - 1) == []  # 23 h 59 min 59.999 s: still pending
    changed = expire_offline_pending(store, lookup, deadline + 3_600_000)
    # its 24 hours are over: scored like any unanswered question — no greeting/closing/politeness (0 of 30), no
    # response (0 + 0), reply rate 0, 回复中断 −10: 30
    assert changed == [{"conversation_id": "x1", "day": day, "old_score": 100.0, "new_score": 30.0}]
    score = store.scores.get("x1")
    assert (score["score"], score["breakdown"]["offline_pending"]) == (30.0, False)
    assert {f["label"] for f in store.findings.find(conversation_id="x1")} == {
        "unanswered_at_end", "missing_greeting", "missing_closing", "politeness_rate"}
    # now it counts against a09's reply rate: 1 asked, 0 answered
    assert [(a["agent_id"], a["inquiries"], a["answered_inquiries"]) for a in kpi.scoreboard(
        store.scores.of_day(day))] == [("a09", 1, 0)]
    assert expire_offline_pending(store, lookup, deadline + 7_200_000) == []  # once
    # the day's report was out: it is re-issued as version 2 with what changed
    assert [s["day"] for s in store.report_versions.stale_days()] == [day]
    assert reissue_stale(store, tmp_path, lookup("s1"), book=book) == [("day", day, 2)]
    v2 = store.report_versions.get("day", day, 2)
    assert v2 is not None and v2["changes"]["conversations"] == [
        {"conversation_id": "x1", "agent_id": "a09", "old_score": 100.0, "new_score": 30.0, "old_fatal": False,
         "new_fatal": False}]


def test_offline_hours_per_shop_and_the_reply_rate(store: Database) -> None:
    document = dict(load_ruleset().document)
    document["shops"] = {"s1": {"rubric": {"offline_hours": [["22:00", "08:00"]], "offline_reply_s": 43_200}}}
    lookup = rubric_lookup(RuleBook(parse_ruleset(document)))
    assert lookup("s1").offline(NIGHT) and not lookup("other").offline(NIGHT)
    assert lookup("s1").offline_reply_s == 43_200 and lookup("other").offline_reply_s == 86_400
    pending = summary_of(event("c1", "customer", NIGHT, "在吗？", conv="p1"),
                         event("end", "system", NIGHT + 600_000, etype="conversation_ended", agent=None, conv="p1"))
    answered = answered_next_morning(NIGHT + 60_000, 600, conv="p2")
    store.scores.save_scored([pending, answered], lookup)
    board = kpi.scoreboard(store.scores.of_day(lookup("s1").day(NIGHT)))
    # the pending question is not counted as 咨询 yet: 1 asked, 1 answered
    assert [(a["agent_id"], a["inquiries"], a["answered_inquiries"], a["reply_rate"]) for a in board] == [
        ("a09", 1, 1, 1.0)]
    assert store.findings.find(conversation_id="p1") == []


def _night_shop() -> RuleBook:
    document = dict(load_ruleset().document)
    document["shops"] = {"s1": {"rubric": {"offline_hours": [["22:00", "08:00"]]}}}
    return RuleBook(parse_ruleset(document))


def test_an_overnight_question_keeps_its_conversation_open_for_the_morning_answer() -> None:
    """Closing for inactivity (10 min) would make the morning's answer a new turn and the question never answered."""
    book = _night_shop()
    state = process_event(None, event("c1", "customer", NIGHT, "还有货吗？"), now_ms=NIGHT + 200, book=book).state
    for minutes in (11, 60, 8 * 60):  # housekeeping asks to close all night: the 留言 waits for the shop
        outcome = process_tick(state, Tick("close"), now_ms=NIGHT + minutes * 60_000, book=book)
        assert not outcome.changed and outcome.state is not None and outcome.state.status == "open"
    morning = NIGHT + 10 * 3_600_000  # 09:00: the agent answers, says goodbye, the chat ends
    final: list[dict[str, Any]] = []
    for e in (event("a1", "agent", morning, GREETING), event("a2", "agent", morning + 5000, CLOSING),
              event("end", "system", morning + 9000, etype="conversation_ended", agent=None)):
        outcome = process_event(state, e, now_ms=e.ts_ms + 200, book=book)
        state = outcome.state
        final.extend(s for s in outcome.snapshots if s.get("final"))
    summary = final[-1]
    assert summary["metrics"]["response_times_s"] == [36_000.0]  # one turn: the night's question, answered
    score = score_summary(summary, rubric_lookup(book)("s1"))
    assert "回复中断" not in str(score.breakdown) and sections(score)["响应时效"] == 30


def test_an_overnight_question_nobody_answers_closes_after_its_24_hours_as_never_answered() -> None:
    book = _night_shop()
    state = process_event(None, event("c1", "customer", NIGHT, "还有货吗？"), now_ms=NIGHT + 200, book=book).state
    assert not process_tick(state, Tick("close"), now_ms=NIGHT + 86_400_000 - 1, book=book).changed
    outcome = process_tick(state, Tick("close"), now_ms=NIGHT + 86_400_000, book=book)
    summary = next(s for s in outcome.snapshots if s.get("final"))
    assert summary["close_reason"] == "inactivity"
    assert not offline_of(summary, rubric_lookup(book)("s1")).pending  # the day is over: 回复中断, not pending


def test_a_daytime_question_still_closes_after_ten_quiet_minutes() -> None:
    book = _night_shop()
    state = process_event(None, event("c1", "customer", DAY, "还有货吗？"), now_ms=DAY + 200, book=book).state
    outcome = process_tick(state, Tick("close"), now_ms=DAY + 601_000, book=book)
    assert outcome.state is not None and outcome.state.status == "closed"


def test_a_question_the_platform_marked_offline_is_covered_inside_the_shifts_too() -> None:
    """No agent online (the platform's 留言 mark, ``offline`` on the customer's message) at 14:00, inside every
    shift: answered 3 h later it is in time; the same question unmarked costs the response-time points."""
    def chat(marked: bool, conv: str) -> dict[str, Any]:
        return summary_of(event("c1", "customer", DAY, "还有货吗？", conv=conv, offline=marked),
                          event("c2", "customer", DAY + 60_000, "在吗", conv=conv),  # the same turn: still offline
                          event("a1", "agent", DAY + 3 * 3600_000, GREETING, conv=conv),
                          event("c3", "customer", DAY + 3 * 3600_000 + 10_000, "好的，几号发？", conv=conv),
                          event("a2", "agent", DAY + 3 * 3600_000 + 40_000, "明天发货，" + CLOSING, conv=conv),
                          event("end", "system", DAY + 3 * 3600_000 + 60_000, etype="conversation_ended", agent=None,
                                conv=conv))
    marked, unmarked = chat(True, "m1"), chat(False, "m2")
    assert marked["metrics"]["first_customer_offline"] and marked["metrics"]["offline_turn_starts_ms"] == [DAY]
    assert not unmarked["metrics"]["first_customer_offline"] and unmarked["metrics"]["offline_turn_starts_ms"] == []
    # unmarked: first response 10 800 s → 0; average (10 800 + 30) / 2 s → 0; reply rate 2/2 → 10: 响应时效 10
    assert sections(score_summary(unmarked, ONLINE))["响应时效"] == 10
    # marked: the first turn is in time (10); the average leaves it out: 30 s → 10 (≤ 30 s tier); 10: 响应时效 30
    scored = score_summary(marked, ONLINE)
    assert sections(scored)["响应时效"] == 30 and scored.score == 100.0


def test_a_marked_question_left_unanswered_at_the_close_is_pending_then_a_missed_reply() -> None:
    summary = summary_of(event("c1", "customer", DAY, "在吗？", offline=True),
                         event("end", "system", DAY + 600_000, etype="conversation_ended", agent=None))
    assert summary["metrics"]["waiting_offline"] is True
    assert offline_of(summary, ONLINE).pending and score_summary(summary, ONLINE).offline_pending
    unmarked = summary_of(event("c1", "customer", DAY, "在吗？", conv="u1"),
                          event("end", "system", DAY + 600_000, etype="conversation_ended", agent=None, conv="u1"))
    assert not offline_of(unmarked, ONLINE).pending and score_summary(unmarked, ONLINE).score == 30.0


def test_the_mark_survives_the_state_round_trip_and_older_states_read_as_unmarked() -> None:
    machine = Machine()
    machine.pending_offline, machine.first_customer_offline, machine.offline_starts = True, True, [DAY]
    again = Machine.from_list(machine.to_list())
    assert (again.pending_offline, again.first_customer_offline, again.offline_starts) == (True, True, [DAY])
    plain = Machine().to_list()
    assert len(plain) == 19  # nothing marked: the state keeps its old, shorter shape
    assert Machine.from_list(plain).offline_starts == [] and not Machine.from_list(plain).pending_offline


def test_a_marked_daytime_question_keeps_its_conversation_open_until_answered() -> None:
    """Inside the shifts, but the platform marked it 留言: no inactivity close after ten minutes; the 24 hours run."""
    book = RuleBook(load_ruleset())
    state = process_event(None, event("c1", "customer", DAY, "还有货吗？", offline=True), now_ms=DAY + 200,
                          book=book).state
    for minutes in (11, 60, 23 * 60):
        outcome = process_tick(state, Tick("close"), now_ms=DAY + minutes * 60_000, book=book)
        assert not outcome.changed and outcome.state is not None and outcome.state.status == "open"
    outcome = process_tick(state, Tick("close"), now_ms=DAY + 86_400_000, book=book)
    assert outcome.state is not None and outcome.state.status == "closed"
