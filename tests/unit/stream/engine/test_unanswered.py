"""A chat nobody answered (issue 17, item 2): it belongs to its assigned agent, scores nothing for
response time, greeting, closing and politeness, and lowers that agent's reply rate (咨询人数)."""

from __future__ import annotations

from detectors import load_ruleset
from detectors.rubric import rubric_of
from tests.factories import T0
from tests.factories import assigned_event as event
from tests.factories import run_to_close as run
from tests.factories import unanswered_chat as reproduction
from zhijian.scoring import findings_of, kpi, score_summary
from zhijian.store.database import Database

RUBRIC = rubric_of(load_ruleset().rubric)
def test_the_unanswered_chat_belongs_to_its_assigned_agent_and_scores_nothing_for_service() -> None:
    summary, credits = reproduction()
    assert summary["agent_id"] == "a09" and summary["assigned_agent"] == "a09"
    assert summary["metrics"]["turns"] == 1 and summary["metrics"]["answered_turns"] == 0
    assert summary["metrics"]["messages"]["agent"] == 0
    score = score_summary(summary, RUBRIC)
    # 服务态度 30: no deduction (the agent said nothing rude)                          = 30
    # 服务用语 30: politeness 0 (no agent message), greeting 0, closing 0              =  0
    # 响应时效 30: first response 0 (never answered), average 0 (never answered),
    #             reply rate 0/1 turns = 0 % → 0                                       =  0
    # 流程规范 10: 回复中断 (closed on an unanswered question) −10                      =  0
    # total 30 (it was 80: full marks for response time, greeting, closing and politeness)
    parts = {s["section"]: s for s in score.breakdown}
    assert parts["服务用语"]["items"] == {"politeness": 0, "greeting": 0, "closing": 0}
    assert parts["响应时效"]["items"] == {"first_response": 0, "avg_response": 0, "reply_rate": 0}
    assert {name: s["points"] for name, s in parts.items()} == {"服务态度": 30, "服务用语": 0, "响应时效": 0,
                                                                "流程规范": 0}
    assert (score.score, score.fatal) == (30.0, False)
    why = {f["label"]: f.get("detail") for f in findings_of(summary)}
    assert set(why) == {"missing_greeting", "missing_closing", "politeness_rate", "unanswered_at_end"}
    assert why["missing_greeting"] == {"reason": "no_agent_message", "customer_turns": 1}
    assert [(c.agent_id, c.score) for c in credits if c.score is not None] == [("a09", 30.0)]


def test_a_silent_conversation_without_a_question_is_not_punished() -> None:
    summary, _ = run(event("s", "system", 0, etype="conversation_started", agent=None),
                     event("end", "system", 30, etype="conversation_ended", agent=None))
    assert summary["metrics"]["turns"] == 0
    assert findings_of(summary) == []
    assert score_summary(summary, RUBRIC).score == 100.0  # nothing asked: nothing to judge


def test_an_answer_keeps_the_tiers_and_the_silent_rule_does_not_apply() -> None:
    summary, _ = run(event("m1", "customer", 0, "在吗"), event("a1", "agent", 5, "您好，很高兴为您服务"),
                     event("a2", "agent", 9, "感谢您的耐心，祝您生活愉快"),
                     event("end", "system", 20, etype="conversation_ended", agent=None))
    # first response 5 s → 10, average 5 s → 10, reply rate 1/1 → 10; greeting, closing, 2/2 polite: 100
    assert score_summary(summary, RUBRIC).score == 100.0


def test_the_unanswered_chat_lowers_a09s_reply_rate(store: Database) -> None:
    answered, _ = run(event("m1", "customer", 0, "在吗", conv="c-ok"),
                      event("a1", "agent", 5, "您好，很高兴为您服务", conv="c-ok"),
                      event("end", "system", 20, etype="conversation_ended", agent=None, conv="c-ok"))
    silent, _ = reproduction()
    rubric = lambda _shop: RUBRIC  # noqa: E731
    assert store.scores.save_scored([answered], rubric) == 1
    day = RUBRIC.day(T0)
    before = kpi.scoreboard(store.scores.of_day(day))
    assert [(a["agent_id"], a["inquiries"], a["answered_inquiries"], a["reply_rate"]) for a in before] == [
        ("a09", 1, 1, 1.0)]
    assert store.scores.save_scored([silent], rubric) == 1
    after = kpi.scoreboard(store.scores.of_day(day))
    # 咨询人数 2 (both customers asked), 回复人数 1: reply rate 50 %
    assert [(a["agent_id"], a["inquiries"], a["answered_inquiries"], a["reply_rate"]) for a in after] == [
        ("a09", 2, 1, 0.5)]
    assert store.scores.get("c-a09")["agent_id"] == "a09"  # type: ignore[index]
