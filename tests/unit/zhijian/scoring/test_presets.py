"""Scorecard presets (issue 17, item 1): the seed's Taobao card and promotion test, chosen per shop, with
hand-computed scores; the never-answered chat scores 0 for response time under every preset."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from detectors import RuleBook, load_ruleset, parse_ruleset
from detectors.rubric import parse_rubric, rubric_of
from tests.factories import Run, ev
from tests.factories import unanswered_chat as reproduction
from zhijian.scoring import rubric_lookup, score_summary

SEED = dict(load_ruleset().rubric)
DEFAULT, TAOBAO, PROMOTION = (rubric_of({**SEED, "scorecard": name}) for name in ("default", "taobao", "promotion"))
# the same cards under the jd profile, where 你 is a −1 deduction rather than fatal
JD = dict(load_ruleset().for_shop("shop-jd-02").rubric)
JD_DEFAULT, JD_PROMOTION = (rubric_of({**JD, "scorecard": name}) for name in ("default", "promotion"))


def sections(score: Any) -> dict[str, float]:
    return {s["section"]: s["points"] for s in score.breakdown}


def slow_rude_chat() -> dict[str, Any]:
    """First answer after 15 s, one 你, one conflict; 很高兴为您服务 is both the 开头语 and (within the last two
    agent messages) the 结束语."""
    return Run().feed(ev("c1", "customer", 0, "在吗"), ev("a1", "agent", 15, "您好，很高兴为您服务"),
                      ev("c2", "customer", 20, "能便宜吗"), ev("a2", "agent", 25, "说了多少遍了，你看详情页")).end(40)


def test_a_shop_picks_its_preset_and_unknown_ones_are_refused() -> None:
    document = copy.deepcopy(dict(load_ruleset().document))
    document["shops"] = {"tb": {"rubric": {"scorecard": "taobao"}}, "hr": {"rubric": {"scorecard": "promotion"}}}
    lookup = rubric_lookup(RuleBook(parse_ruleset(document)))
    assert [(lookup(s).scorecard, lookup(s).max_score) for s in ("tb", "hr", "other")] == [
        ("taobao", 150), ("promotion", 100), ("default", 100)]
    with pytest.raises(ValueError, match="no such preset"):
        parse_rubric({**SEED, "scorecard": "tmall"})
    broken = copy.deepcopy(SEED)
    broken["presets"]["promotion"]["sections"][0]["points"] = 70  # 70 + 40 ≠ 100
    with pytest.raises(ValueError, match=r"presets\.promotion"):
        parse_rubric(broken)  # validated even when not chosen


def test_the_tmall_profile_keeps_the_automatic_card_and_a_tmall_shop_opts_into_taobao() -> None:
    """The tmall profile (every shop's default) does not switch to the Taobao card: 60 of its 150 points wait for a
    reviewer, so an unreviewed clean chat would score 80/150. A shop that reviews with the Taobao form opts in."""
    document = copy.deepcopy(dict(load_ruleset().document))
    document["shops"] = {**document["shops"], "tb": {"profile": "tmall", "rubric": {"scorecard": "taobao"}}}
    lookup = rubric_lookup(RuleBook(parse_ruleset(document)))
    assert [(lookup(s).scorecard, lookup(s).max_score) for s in ("shop-tmall-01", "no-profile", "tb")] == [
        ("default", 100), ("default", 100), ("taobao", 150)]
    from tests.factories import Run, ev

    clean = Run().feed(ev("c1", "customer", 0, "在吗"), ev("a1", "agent", 5, "您好，很高兴为您服务"),
                       ev("c2", "customer", 10, "有货吗"), ev("a2", "agent", 15, "有的，感谢您的耐心")).end(20)
    # Taobao card: 服务态度 20, 服务用语 10 + 10, 信息回复 0 of 50 (four human items pending), 流程规范 10 + 10 + 0 of
    # 20 (信息备注 pending), 其它 20: 20 + 20 + 0 + 20 + 20 = 80 of 150 until a reviewer scores the human items;
    # the default card gives the same chat its 100 of 100
    taobao = score_summary(clean, lookup("tb"))
    assert (taobao.score, len(taobao.pending_items)) == (80.0, 5)
    assert score_summary(clean, lookup("shop-tmall-01")).score == 100.0


def test_the_same_chat_under_each_preset_by_hand() -> None:
    summary = slow_rude_chat()
    assert summary["labels"] == {"conflict": 1, "impolite_address": 1}
    for strict in (DEFAULT, TAOBAO, PROMOTION):  # the strict (tmall) profile: 你 is a 禁忌语句, fatal on every card
        scored = score_summary(summary, strict)
        assert (scored.score, scored.fatal_labels) == (0.0, ["impolite_address"]), strict.scorecard
    default = score_summary(summary, JD_DEFAULT)
    # under jd, default: 服务态度 30 − 5 (conflict) = 25; 服务用语: politeness 1 of 2 polite (50 %) → 8 (the 40 % tier),
    # greeting 5, closing 5, − 1 (你) = 17; 响应时效: first 15 s → 6, average (15 + 5)/2 = 10 s → 10, reply rate
    # 100 % → 10 = 26; 流程规范 10: 25 + 17 + 26 + 10 = 78
    assert sections(default) == {"服务态度": 25, "服务用语": 17, "响应时效": 26, "流程规范": 10}
    assert default.score == 78.0
    taobao = score_summary(summary, TAOBAO)
    # taobao: 你 is a 禁忌语句 (fatal): 0 of 150
    assert (taobao.score, taobao.max_score, taobao.fatal_labels) == (0.0, 150, ["impolite_address"])
    promotion = score_summary(summary, JD_PROMOTION)
    # promotion: 业务技能 = first response 6 + 产品专业性 pending 0 + 销售/售后 pending 0 = 6;
    # 工作态度 = politeness 8 + 服务态度 pending 0 = 8: 14, three items pending review
    assert sections(promotion) == {"业务技能": 6, "工作态度": 8}
    assert promotion.score == 14.0 and promotion.pending_items == ["产品专业性", "销售/售后能力", "服务态度"]
    reviewed = score_summary(summary, JD_PROMOTION, human={"产品专业性": 12, "销售/售后能力": 25, "服务态度": 12})
    assert reviewed.score == 14.0 + 12 + 25 + 12 and reviewed.pending_items == []


def test_taobao_by_hand_without_a_fatal() -> None:
    summary = Run().feed(ev("c1", "customer", 0, "在吗"), ev("a1", "agent", 15, "您好，很高兴为您服务"),
                         ev("c2", "customer", 20, "能便宜吗"), ev("a2", "agent", 25, "说了多少遍了，您看详情页"),
                         ev("a3", "agent", 30, "感谢您的耐心，祝您生活愉快")).end(40)
    human = {"准确全面": 18, "催发货": 10, "退换件": 10, "快捷短语": 8, "信息备注": 20}
    score = score_summary(summary, TAOBAO, human=human, bonus=10)
    # 服务态度 20 − 5 (conflict) = 15; 服务用语: 开头语 10 + 结束语 10 = 20; 信息回复 18 + 10 + 10 + 8 = 46;
    # 流程规范: first 15 s → 6, average 10 s → 10, 信息备注 20 = 36; 其它 20: 137, + 亮点 10 = 147 of 150
    assert sections(score) == {"服务态度": 15, "服务用语": 20, "信息回复": 46, "流程规范": 36, "其它": 20}
    assert score.score == 147.0


@pytest.mark.parametrize("rubric", [DEFAULT, TAOBAO, PROMOTION], ids=["default", "taobao", "promotion"])
def test_the_never_answered_chat_scores_nothing_for_response_time_under_every_preset(rubric: Any) -> None:
    summary, _ = reproduction()
    score = score_summary(summary, rubric)
    timed = {item: points for s in score.breakdown for item, points in s["items"].items()
             if item in ("first_response", "avg_response", "reply_rate")}
    assert timed and set(timed.values()) == {0}
    assert summary["agent_id"] == "a09"
