"""抽检 rules on plain rows, each count worked out by hand (zhijian/scoring/sampling.py has the seed passages)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from detectors import RuleBook, load_ruleset, parse_ruleset
from detectors.rubric import Sampling, parse_sampling, rubric_of
from zhijian.reports.rollup import sampling_of
from zhijian.scoring import rubric_lookup
from zhijian.scoring.sampling import (
    LastMonth,
    cap_sample,
    last_month_of,
    previous_months,
    random_count,
    reduced_agents,
    sample_day,
)

DAY = "2026-11-23"


def row(conv: str, agent: str, opened: int, duration: float, labels: dict[str, int] | None = None, *,
        avg: float | None = 10.0, fatal: bool = False, shop: str = "s1", score: float = 100.0) -> dict[str, Any]:
    return {"conversation_id": conv, "agent_id": agent, "shop_id": shop, "opened_ms": opened, "duration_s": duration,
            "labels": labels or {}, "score": score, "max_score": 100, "fatal": fatal, "avg_response_s": avg}


def reasons(picked: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {p["conversation_id"]: p["reasons"] for p in picked}


def test_the_issue_reproduction_200_chats_with_20_percent_politeness_findings_give_about_one_percent() -> None:
    rows = [row(f"c{n:03d}", "A", n, 60, {"politeness_rate": 1} if n % 5 == 0 else None) for n in range(200)]
    picked = reasons(sample_day(DAY, rows))
    # 1 % of 200 = 2 at random; a politeness finding is neither confirmed nor critical: no neighbours; no chat is
    # under 20 s; the day's mean response (10 s) met the 30 s target, so none over 200 s would be taken either
    assert len(picked) == 2 and all(why == ["random_1pct"] for why in picked.values())
    assert reasons(sample_day(DAY, list(reversed(rows)))) == picked  # the order of rows does not matter
    assert reasons(sample_day("2026-11-24", rows)) != picked  # seeded by date and agent


def test_short_chats_are_always_sampled_long_ones_only_on_a_day_that_missed_the_response_target() -> None:
    rows = [row(f"c{n:03d}", "A", n, 60, avg=25.0) for n in range(100)]
    rows[10] = row("c010", "A", 10, 12, avg=25.0)  # 12 s < 20 s
    rows[20] = row("c020", "A", 20, 250, avg=35.0)  # 250 s > 200 s
    picked = reasons(sample_day(DAY, rows))
    # the day's mean response: (99 × 25 + 35) / 100 = 25.1 s ≤ 30 s — the target was met, the long chat is not taken
    assert "shorter_than_20s" in picked["c010"]
    assert "longer_than_200s" not in picked.get("c020", [])
    missed = [dict(r, avg_response_s=31.0) for r in rows]  # every conversation 31 s: mean 31 > 30, target missed
    assert "longer_than_200s" in reasons(sample_day(DAY, missed))["c020"]
    # the target comes from the shop's settings: 35 s tolerates the 31 s day
    lenient = Sampling(response_target_s=35.0)
    assert "longer_than_200s" not in reasons(sample_day(DAY, missed, config_for=lambda _s: lenient)).get("c020", [])
    # per shop: another shop's slow day does not pull this shop's long chats
    other = [row(f"o{n}", "B", n, 60, avg=90.0, shop="s2") for n in range(10)]
    assert "longer_than_200s" not in reasons(sample_day(DAY, [*rows, *other])).get("c020", [])


def test_neighbours_only_around_confirmed_or_critical_problems() -> None:
    rows = [row(f"c{n:03d}", "A", n, 60) for n in range(300)]
    rows[30] = row("c030", "A", 30, 60, {"conflict": 1}, fatal=False)
    rows[60] = row("c060", "A", 60, 60, {"banned_word": 1}, fatal=True)  # scored 0: critical
    rows[90] = row("c090", "A", 90, 60, {"politeness_rate": 1})  # confirmed in review (below)
    rows[120] = row("c120", "A", 120, 60, {"impolite_address": 1})  # a warning: nothing
    picked = reasons(sample_day(DAY, rows, confirmed={"c090"}))
    assert "critical_finding" in picked["c060"] and "before_a_finding" in picked["c059"] \
        and "after_a_finding" in picked["c061"]
    assert "confirmed_finding" in picked["c090"] and "before_a_finding" in picked["c089"] \
        and "after_a_finding" in picked["c091"]
    for quiet in ("c029", "c031", "c119", "c121"):  # conflict here is not critical (no predicate): no neighbours
        assert "before_a_finding" not in picked.get(quiet, []) and "after_a_finding" not in picked.get(quiet, [])
    # with the shop's critical labels (conflict is critical in the seed), conflict pulls its neighbours too
    by_label = reasons(sample_day(DAY, rows, critical=lambda r: bool(r["labels"].get("conflict"))))
    assert "critical_finding" in by_label["c030"] and "after_a_finding" in by_label["c031"]
    assert "critical_finding" not in by_label.get("c060", [])  # the predicate given replaces the fatal default


def test_the_count_follows_last_months_score() -> None:
    config = Sampling()
    # 300 conversations today, 1 %: 3 × the factor of last month's mean score (share of max)
    assert random_count(config, 300, DAY, last=None) == 3  # no last month: × 1
    assert random_count(config, 300, DAY, last=LastMonth(500, 0.97)) == 2  # ≥ 95 %: ⌈3 × 0.5⌉ = ⌈1.5⌉ = 2
    assert random_count(config, 300, DAY, last=LastMonth(500, 0.90)) == 3  # ≥ 85 %: 3 × 1
    assert random_count(config, 300, DAY, last=LastMonth(500, 0.75)) == 5  # ≥ 70 %: ⌈4.5⌉ = 5
    assert random_count(config, 300, DAY, last=LastMonth(500, 0.50)) == 6  # below: 3 × 2
    assert random_count(config, 10, DAY, last=LastMonth(500, 0.97)) == 1  # ⌈0.05⌉ = 1, and at least minimum 1
    rows = [row("x1", "A", 1, 60, score=100.0), row("x2", "A", 2, 60, score=80.0), row("y1", "B", 3, 60, score=0.0)]
    assert last_month_of(rows) == {"A": LastMonth(2, 0.9), "B": LastMonth(1, 0.0)}
    # in the sample: B scored 0 last month, so 200 chats give ⌈200 × 1 % × 2⌉ = 4 random picks
    today = [row(f"b{n:03d}", "B", n, 60) for n in range(200)]
    assert len(sample_day(DAY, today, last_month={"B": LastMonth(1, 0.0)})) == 4


def test_a_monthly_share_is_drawn_evenly_over_the_month() -> None:
    monthly = Sampling(per="month")
    last = LastMonth(620, 0.9)  # quota: ⌈620 × 1 %⌉ = ⌈6.2⌉ = 7 for November (30 days)
    # by the 10th, ⌈7 × 10 / 30⌉ = ⌈2.33⌉ = 3 are due; 2 drawn already: 1 today
    assert random_count(monthly, 40, "2026-11-10", last=last, taken_this_month=2) == 1
    assert random_count(monthly, 40, "2026-11-10", last=last, taken_this_month=3) == 0
    # by the 30th all 7 are due; 5 drawn: 2 today — but never more than today's conversations
    assert random_count(monthly, 40, "2026-11-30", last=last, taken_this_month=5) == 2
    assert random_count(monthly, 1, "2026-11-30", last=last, taken_this_month=0) == 1
    # no volume last month (a new agent): the day's share
    assert random_count(monthly, 250, "2026-11-10", last=None) == 3  # ⌈2.5⌉


def test_the_reduced_sample_lasts_one_month_then_normal_sampling_resumes() -> None:
    perfect = {("2026-09-01", "2026-09-30"): [row("s1", "P", 1, 60)], ("2026-10-01", "2026-10-31"): [
        row("o1", "P", 1, 60)], ("2026-11-01", "2026-11-30"): [row("n1", "P", 1, 60)],
        ("2026-08-01", "2026-08-31"): [row("a1", "P", 1, 60)]}

    def rows_between(first: str, last: str) -> list[dict[str, Any]]:
        return perfect.get((first, last), [])
    config = Sampling()
    # September and October full marks, not reduced in October: November is the reduced month ("从第三个月起")
    assert reduced_agents("2026-11-05", rows_between, config, lambda first, last: set()) == {"P"}
    # December: October and November full marks, but November was the reduced month: its one month is over
    # ("第四个月起质检录音条数恢复正常")
    reduced_in = {("2026-11-01", "2026-11-30"): {"P"}}
    assert reduced_agents("2026-12-05", rows_between, config,
                          lambda first, last: reduced_in.get((first, last), set())) == set()
    # a longer exemption (two months) keeps December reduced too
    two = dataclasses.replace(config, reduced_span_months=2)
    assert reduced_agents("2026-12-05", rows_between, two,
                          lambda first, last: reduced_in.get((first, last), set())) == {"P"}
    # one conversation short of full marks in October: no reduced sample
    perfect[("2026-10-01", "2026-10-31")].append(row("o2", "P", 2, 60, score=99.0))
    assert reduced_agents("2026-11-05", rows_between, config, lambda first, last: set()) == set()


def test_the_reduced_sample_stops_at_five_a_month() -> None:
    rows = [row("c1", "P", 1, 60, {"conflict": 1}, fatal=True), row("c2", "P", 2, 10)]
    assert reasons(sample_day(DAY, rows, reduced={"P"}, taken_this_month={"P": 4})) in (
        {"c1": ["reduced_monthly"]}, {"c2": ["reduced_monthly"]})
    assert sample_day(DAY, rows, reduced={"P"}, taken_this_month={"P": 5}) == []


def test_the_cap_is_per_agent_in_priority() -> None:
    picked = [{"conversation_id": c, "agent_id": a, "reasons": [r]} for c, a, r in (
        ("c1", "A", "random_1pct"), ("c2", "A", "before_a_finding"), ("c3", "A", "critical_finding"),
        ("c4", "A", "shorter_than_20s"), ("c5", "B", "random_1pct"), ("c6", "B", "confirmed_finding"))]
    caps = {"A": 2, "B": 1}
    assert [p["conversation_id"] for p in cap_sample(picked, lambda agent: caps[agent])] == ["c3", "c4", "c6"]


def test_sampling_is_configured_per_shop_in_the_rule_set() -> None:
    seed = rubric_of(dict(load_ruleset().rubric))
    assert seed.sampling == Sampling()  # the seed's [rubric.sampling] is the defaults
    document = dict(load_ruleset().document)
    document["shops"] = {**document.get("shops", {}), "big": {"rubric": {"sampling": {
        "share": 0.02, "per": "month", "cap": 5, "response_target_s": 40}}}}
    lookup = rubric_lookup(RuleBook(parse_ruleset(document)))
    big = sampling_of(lookup("big"))
    assert (big.share, big.per, big.cap, big.response_target_s, big.long_s) == (0.02, "month", 5, 40.0, 200.0)
    # unset, the target is the shop's first 平均响应 tier ([timing] avg_response_tiers: ≤ 30 s)
    assert sampling_of(lookup("other")).response_target_s == 30.0
    for bad in ({"share": 2}, {"per": "week"}, {"cap": -1}, {"score_factors": [[0.5, 1.0]]}, {"often": 1}):
        with pytest.raises(ValueError):
            parse_sampling(bad)


def test_previous_months_cross_the_year() -> None:
    assert previous_months("2026-01-15") == [("2025-12-01", "2025-12-31"), ("2025-11-01", "2025-11-30")]
