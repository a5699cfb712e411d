"""Scoring closed conversations against the seed rubric, with hand-computed expectations."""

from __future__ import annotations

from typing import Any

from detectors import load_ruleset
from detectors.rubric import rubric_of
from tests.factories import Run, ev
from zhijian.scoring import findings_of, score_summary

RUBRIC = rubric_of(load_ruleset().rubric)  # the strict (tmall) profile's: 你 is fatal
LENIENT = rubric_of({**load_ruleset().for_shop("shop-jd-02").rubric})  # the jd profile's: 你 is −1


def sections(score: Any) -> dict[str, float]:
    return {s["section"]: s["points"] for s in score.breakdown}


def model_conversation(*extra: Any) -> dict[str, Any]:
    """Greeting, polite replies within 10 s, closing: full marks unless ``extra`` breaks something."""
    events = [ev("c1", "customer", 0, "在吗"), ev("a1", "agent", 5, "您好，很高兴为您服务"),
              ev("c2", "customer", 10, "有货吗"), ev("a2", "agent", 15, "您好，有货的，请您放心"), *extra,
              ev("a9", "agent", 60, "感谢您的耐心，祝您生活愉快")]
    return Run().feed(*events).end(70)


def test_a_model_conversation_scores_full_marks() -> None:
    score = score_summary(model_conversation(), RUBRIC)
    assert (score.score, score.fatal) == (100.0, False)
    assert sections(score) == {"服务态度": 30, "服务用语": 30, "响应时效": 30, "流程规范": 10}


def test_deductions_by_hand() -> None:
    summary = model_conversation(ev("c3", "customer", 20, "能便宜吗"),
                                 ev("a3", "agent", 44, "嫌贵别买，你自己想办法"),  # conflict, deflection, 你
                                 ev("c4", "customer", 50, "什么态度"),
                                 ev("a4", "agent", 55, "说了多少遍了，您自己看详情"))  # conflict
    strict = score_summary(summary, RUBRIC)
    # 句子中不得出现"你"字: fatal under the strict rubric
    assert (strict.score, strict.fatal, strict.fatal_labels) == (0.0, True, ["impolite_address"])
    score = score_summary(summary, LENIENT)
    # 服务态度 30 − 2×5 (conflict) − 1×3 (deflection: 你自己想办法) − 1×3 (自己看详情) = 14
    # 服务用语: politeness 4 of 5 agent messages polite (80%) → 16, greeting 5, closing 5, − 1 (你) = 25
    # 响应时效: first response 5 s → 10; average (5+5+24+5)/4 = 9.75 s → 10; reply rate 100% → 10 = 30
    assert sections(score) == {"服务态度": 14, "服务用语": 25, "响应时效": 30, "流程规范": 10}
    assert score.score == 79.0 and not score.fatal


def test_a_banned_word_is_fatal_and_an_accepted_appeal_restores_the_score() -> None:
    summary = model_conversation(ev("c3", "customer", 20, "好的"), ev("a3", "agent", 25, "好的哦，请您稍等"))
    score = score_summary(summary, RUBRIC)
    assert (score.score, score.fatal, score.fatal_labels) == (0.0, True, ["banned_word"])
    assert summary["labels"] == {"banned_word": 1}
    appealed = score_summary(summary, RUBRIC, dismissed={"banned_word": 1})
    assert (appealed.score, appealed.fatal) == (100.0, False)


def test_slow_replies_and_an_unanswered_question_cost_their_tiers() -> None:
    events = [ev("c1", "customer", 0, "在吗"), ev("a1", "agent", 22, "您好"), ev("c2", "customer", 30, "价格呢"),
              ev("a2", "agent", 75, "您好，请您稍等"), ev("c3", "customer", 80, "还在吗")]
    summary = Run().feed(*events).end(700)
    score = score_summary(summary, RUBRIC)
    # first response 22 s → 3; average (22+45)/2 = 33.5 s → 6; reply rate 2/3 → 0; unanswered → 流程规范 0
    # 服务用语: greeting 5, no closing 0, politeness 2/2 = 100% → 20
    assert sections(score) == {"服务态度": 30, "服务用语": 25, "响应时效": 9, "流程规范": 0}
    assert score.score == 64.0
    assert {f["label"] for f in findings_of(summary)} == {"missing_closing", "unanswered_at_end"}


def test_bonus_is_capped_by_the_rubric_and_the_maximum() -> None:
    summary = model_conversation(ev("c3", "customer", 20, "好"), ev("a3", "agent", 30, "嗯"))
    assert score_summary(summary, RUBRIC).score == 0.0  # fatal beats any bonus
    partial = Run().feed(ev("c1", "customer", 0), ev("a1", "agent", 15, "您好")).end(20)
    base = score_summary(partial, RUBRIC).score
    assert base == 91.0  # first response 15 s → 6 (−4), no closing (−5)
    assert score_summary(partial, RUBRIC, bonus=3).score == 94.0
    # 亮点 is the seed's 附加项 (亮点事项【10分】): at most 10, and it may lift a chat past 100
    assert score_summary(partial, RUBRIC, bonus=50).score == 101.0  # 91 + 10 (bonus_max 10)
    assert score_summary(model_conversation(), RUBRIC, bonus=10).score == 110.0  # 100 + 10
    within = rubric_of({**load_ruleset().rubric, "bonus_above_max": False, "bonus_max": 5})
    assert score_summary(partial, within, bonus=50).score == 96.0  # 91 + 5, capped at 100 when not an 附加项
    assert score_summary(model_conversation(), within, bonus=5).score == 100.0
