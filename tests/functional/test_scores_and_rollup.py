"""Scores, appeals, the rollup and the review sample on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from tests.factories import DAY, RUBRIC, conversation, rubric_for, save
from zhijian.reports.rollup import run_rollup
from zhijian.scoring import finding_id
from zhijian.store.database import Database
from zhijian.store.errors import AppealError


@pytest.fixture
def shift(store: Database) -> list[dict[str, Any]]:
    """A small shift: three agents, two teams, findings, a slow reply, a fatal one."""
    summaries = [
        conversation("k1", "A", 0), conversation("k2", "A", 100, bad="嫌贵别买"),
        conversation("k3", "A", 200, bad="好的哦，请您稍等"), conversation("k4", "B", 300, slow=True),
        conversation("k5", "B", 400), conversation("k6", "C", 500, team="t2", bad="您自己想办法吧"),
    ]
    assert save(store, summaries) == 6
    return summaries


def scores(store: Database) -> dict[str, tuple[float, bool]]:
    return {r["conversation_id"]: (r["score"], r["fatal"]) for r in store.scores.of_day(DAY)}


def test_scores_match_the_hand_computed_expectation(store: Database, shift: list[dict[str, Any]]) -> None:
    # k2: conflict −5; 嫌贵别买 is not polite, so politeness 3 of 4 messages = 75% → 12 of 20 (−8): 87
    # k3: 哦 is fatal: 0.  k4: first response 22 s → 3 of 10 (−7): 93
    # k6: deflection −3 (您 makes the message polite: politeness 100 %): 97
    assert scores(store) == {"k1": (100.0, False), "k2": (87.0, False), "k3": (0.0, True),
                             "k4": (93.0, False), "k5": (100.0, False), "k6": (97.0, False)}


def test_replaying_the_same_summaries_leaves_the_same_database(store: Database,
                                                              shift: list[dict[str, Any]]) -> None:
    before = (store.scores.of_day(DAY), store.findings.find(limit=1000))
    assert store.scores.save_scored(shift, rubric_for) == 0
    assert store.scores.save_scored(list(reversed(shift)), rubric_for) == 0
    assert (store.scores.of_day(DAY), store.findings.find(limit=1000)) == before


def test_an_accepted_appeal_changes_the_score_and_leaves_an_audit_trail(store: Database,
                                                                       shift: list[dict[str, Any]]) -> None:
    banned = finding_id("k3", "banned_word", "k3-a3", 2, 3)
    appeal = store.appeals.open(banned, agent_id="A", reason="哦 was part of a product name")
    with pytest.raises(AppealError, match="appealed"):
        store.appeals.open(banned, agent_id="A", reason="again")
    decided = store.appeals.decide(appeal["appeal_id"], accept=True, reviewer="qa-1", note="agreed",
                                  rubric_for=rubric_for)
    assert decided["status"] == "accepted" and decided["score"]["score"] == 100.0
    assert scores(store)["k3"] == (100.0, False)
    with pytest.raises(AppealError, match="already accepted"):
        store.appeals.decide(appeal["appeal_id"], accept=False, reviewer="qa-2", note="", rubric_for=rubric_for)
    # a replay of the summary does not bring the dismissed finding back
    store.scores.save_scored(shift, rubric_for)
    assert scores(store)["k3"] == (100.0, False)
    actions = [(a["action"], a["actor"]) for a in store.audit.trail()]
    assert actions == [("appeal.open", "A"), ("appeal.accepted", "qa-1")]

    conflict = finding_id("k2", "conflict", "k2-a3", 0, 4)
    rejected = store.appeals.open(conflict, agent_id="A", reason="not hostile")
    result = store.appeals.decide(rejected["appeal_id"], accept=False, reviewer="qa-1", note="it was",
                                 rubric_for=rubric_for)
    assert result["score"]["score"] == 87.0
    assert {f["finding_id"]: f["status"] for f in store.findings.find(conversation_id="k2")}[conflict] == "upheld"


def test_the_rollup_writes_the_same_files_twice(store: Database, shift: list[dict[str, Any]],
                                               tmp_path: Path) -> None:
    first = run_rollup(store, DAY, tmp_path / "one", RUBRIC, lang="en")
    second = run_rollup(store, DAY, tmp_path / "two", RUBRIC, lang="en")
    for a, b in zip((first.agents_csv, first.teams_csv, first.sample_csv, first.report_html),
                    (second.agents_csv, second.teams_csv, second.sample_csv, second.report_html), strict=True):
        assert a.read_bytes() == b.read_bytes()
    agents = {r["agent_id"]: r for r in csv.DictReader(first.agents_csv.read_text(encoding="utf-8-sig").splitlines())}
    assert agents["A"]["conversations"] == "3" and agents["A"]["fatal"] == "1"
    assert float(agents["A"]["mean_score"]) == pytest.approx((100 + 87 + 0) / 3, abs=1e-3)
    assert (agents["A"]["label_conflict"], agents["A"]["label_banned_word"]) == ("1", "1")
    assert agents["B"]["first_response_p90_s"] == "22.0" and agents["B"]["first_response_mean_s"] == "13.5"
    teams = {r["team_id"]: r for r in csv.DictReader(first.teams_csv.read_text(encoding="utf-8-sig").splitlines())}
    assert (teams["t1"]["conversations"], teams["t2"]["conversations"]) == ("5", "1")
    report = first.report_html.read_text(encoding="utf-8")
    assert report.count("<svg") == 2 and "<script" not in report and "QA daily report" in report
    sample = {s["conversation_id"]: s["reasons"] for s in store.samples.of_day(DAY)}
    # every conversation with a critical finding (conflict, a banned particle: critical rules in the seed), with
    # the agent's previous and next conversation; C's 推脱 is a warning: no problem worth neighbours
    assert "critical_finding" in sample["k2"] and "critical_finding" in sample["k3"]
    assert "critical_finding" not in sample.get("k6", [])
    assert "before_a_finding" in sample["k1"] and "after_a_finding" in sample["k3"]
    assert "k4" not in sample or sample["k4"] == ["random_1pct"]  # B has no finding: only the random pick
    owner = {"k1": "A", "k2": "A", "k3": "A", "k4": "B", "k5": "B", "k6": "C"}
    randoms = sorted(owner[c] for c, reasons in sample.items() if "random_1pct" in reasons)
    assert randoms == ["A", "B", "C"]  # 1% of a handful: one each


def test_agents_with_two_full_months_get_the_reduced_sample(store: Database, tmp_path: Path) -> None:
    month = 30 * 86_400  # seconds
    perfect = [conversation(f"p{m}{n}", "P", -month * m - n * 100) for m in (1, 2) for n in range(3)]
    mixed = [conversation("m1", "M", -month), conversation("m2", "M", -2 * month, bad="嫌贵别买")]
    today = [conversation(f"t{n}", agent, n * 100) for n, agent in enumerate(["P", "P", "M", "M"])]
    save(store, perfect + mixed + today)
    run_rollup(store, DAY, tmp_path, RUBRIC)
    sample = store.samples.of_day(DAY)
    by_agent = {s["agent_id"]: s["reasons"] for s in sample}
    assert by_agent["P"] == ["reduced_monthly"]
    assert "reduced_monthly" not in by_agent["M"]
