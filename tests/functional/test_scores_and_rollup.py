"""Scores, appeals, the rollup and the review sample on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from detectors import load_ruleset
from detectors.rubric import rubric_of
from tests.unit.test_response_times import T0, Run, ev
from zhijian.reports.rollup import run_rollup
from zhijian.scoring import finding_id
from zhijian.store.app import AppStore as QualityStore
from zhijian.store.quality import AppealError, samples_for

RUBRIC = rubric_of(load_ruleset().rubric)
DAY = RUBRIC.day(T0)  # 2026-11-18 on the floor's clock (Asia/Shanghai)


def rubric_for(_shop: str) -> Any:
    return RUBRIC


def conversation(conv: str, agent: str, start_s: float, *, bad: str | None = None, team: str = "t1",
                 slow: bool = False) -> dict[str, Any]:
    """A scripted conversation closed by conversation_ended; ``bad`` adds one agent message."""
    def e(mid: str, sender: str, at: float, text: str = "您好", **kw: Any) -> Any:
        event = ev(f"{conv}-{mid}", sender, start_s + at, text, **{"agent": agent, "team": team, **kw})
        return event.__class__(**{**event.to_dict(), "conversation_id": conv})

    events = [e("c1", "customer", 0, "在吗"), e("a1", "agent", 22 if slow else 5, "您好，很高兴为您服务"),
              e("c2", "customer", 30, "有货吗"), e("a2", "agent", 35, "您好，有货的，请您放心")]
    if bad:
        events += [e("c3", "customer", 40, "好"), e("a3", "agent", 45, bad)]
    events.append(e("a9", "agent", 60, "感谢您的耐心，祝您生活愉快"))
    run = Run()
    for event in events:
        run.feed(event)
    end = e("end", "system", 70, "", etype="conversation_ended", agent=None, team=None)
    run.feed(end)
    LINES[conv] = run.lines
    return run.snapshots[-1]


LINES: dict[str, list[Any]] = {}  # each scripted conversation's transcript lines, as the pipeline emits them


def save(store: QualityStore, summaries: list[dict[str, Any]]) -> int:
    """What the worker's persist agents do: the transcript (with message findings), then the summaries."""
    store.save_transcript([line for s in summaries for line in LINES[s["conversation_id"]]], rubric_for)
    return store.save_scored(summaries, rubric_for)


@pytest.fixture
def shift(store: QualityStore) -> list[dict[str, Any]]:
    """A small shift: three agents, two teams, findings, a slow reply, a fatal one."""
    summaries = [
        conversation("k1", "A", 0), conversation("k2", "A", 100, bad="嫌贵别买"),
        conversation("k3", "A", 200, bad="好的哦，请您稍等"), conversation("k4", "B", 300, slow=True),
        conversation("k5", "B", 400), conversation("k6", "C", 500, team="t2", bad="你自己想办法吧"),
    ]
    assert save(store, summaries) == 6
    return summaries


def scores(store: QualityStore) -> dict[str, tuple[float, bool]]:
    return {r["conversation_id"]: (r["score"], r["fatal"]) for r in store.scored_rows(DAY)}


def test_scores_match_the_hand_computed_expectation(store: QualityStore, shift: list[dict[str, Any]]) -> None:
    # k2: conflict −5; 嫌贵别买 is not polite, so politeness 3 of 4 messages = 75% → 12 of 20 (−8): 87
    # k3: 哦 is fatal: 0.  k4: first response 22 s → 3 of 10 (−7): 93
    # k6: deflection −3; 你 −1; politeness 75% → −8: 88
    assert scores(store) == {"k1": (100.0, False), "k2": (87.0, False), "k3": (0.0, True),
                             "k4": (93.0, False), "k5": (100.0, False), "k6": (88.0, False)}


def test_replaying_the_same_summaries_leaves_the_same_database(store: QualityStore,
                                                              shift: list[dict[str, Any]]) -> None:
    before = (store.scored_rows(DAY), store.findings_for(limit=1000))
    assert store.save_scored(shift, rubric_for) == 0
    assert store.save_scored(list(reversed(shift)), rubric_for) == 0
    assert (store.scored_rows(DAY), store.findings_for(limit=1000)) == before


def test_an_accepted_appeal_changes_the_score_and_leaves_an_audit_trail(store: QualityStore,
                                                                       shift: list[dict[str, Any]]) -> None:
    banned = finding_id("k3", "banned_word", "k3-a3", 2, 3)
    appeal = store.open_appeal(banned, agent_id="A", reason="哦 was part of a product name")
    with pytest.raises(AppealError, match="appealed"):
        store.open_appeal(banned, agent_id="A", reason="again")
    decided = store.decide_appeal(appeal["appeal_id"], accept=True, reviewer="qa-1", note="agreed",
                                  rubric_for=rubric_for)
    assert decided["status"] == "accepted" and decided["score"]["score"] == 100.0
    assert scores(store)["k3"] == (100.0, False)
    with pytest.raises(AppealError, match="already accepted"):
        store.decide_appeal(appeal["appeal_id"], accept=False, reviewer="qa-2", note="", rubric_for=rubric_for)
    # a replay of the summary does not bring the dismissed finding back
    store.save_scored(shift, rubric_for)
    assert scores(store)["k3"] == (100.0, False)
    actions = [(a["action"], a["actor"]) for a in store.audit_trail()]
    assert actions == [("appeal.open", "A"), ("appeal.accepted", "qa-1")]

    conflict = finding_id("k2", "conflict", "k2-a3", 0, 4)
    rejected = store.open_appeal(conflict, agent_id="A", reason="not hostile")
    result = store.decide_appeal(rejected["appeal_id"], accept=False, reviewer="qa-1", note="it was",
                                 rubric_for=rubric_for)
    assert result["score"]["score"] == 87.0
    assert {f["finding_id"]: f["status"] for f in store.findings_for(conversation_id="k2")}[conflict] == "upheld"


def test_the_rollup_writes_the_same_files_twice(store: QualityStore, shift: list[dict[str, Any]],
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
    sample = {s["conversation_id"]: s["reasons"] for s in samples_for(store, DAY)}
    # every conversation with a finding, with the agent's previous and next conversation
    assert "has_finding" in sample["k2"] and "has_finding" in sample["k3"] and "has_finding" in sample["k6"]
    assert "before_a_finding" in sample["k1"] and "after_a_finding" in sample["k3"]
    assert "k4" not in sample or sample["k4"] == ["random_1pct"]  # B has no finding: only the random pick
    owner = {"k1": "A", "k2": "A", "k3": "A", "k4": "B", "k5": "B", "k6": "C"}
    randoms = sorted(owner[c] for c, reasons in sample.items() if "random_1pct" in reasons)
    assert randoms == ["A", "B", "C"]  # 1% of a handful: one each


def test_agents_with_two_full_months_get_the_reduced_sample(store: QualityStore, tmp_path: Path) -> None:
    month = 30 * 86_400  # seconds
    perfect = [conversation(f"p{m}{n}", "P", -month * m - n * 100) for m in (1, 2) for n in range(3)]
    mixed = [conversation("m1", "M", -month), conversation("m2", "M", -2 * month, bad="嫌贵别买")]
    today = [conversation(f"t{n}", agent, n * 100) for n, agent in enumerate(["P", "P", "M", "M"])]
    save(store, perfect + mixed + today)
    run_rollup(store, DAY, tmp_path, RUBRIC)
    sample = samples_for(store, DAY)
    by_agent = {s["agent_id"]: s["reasons"] for s in sample}
    assert by_agent["P"] == ["reduced_monthly"]
    assert "reduced_monthly" not in by_agent["M"]
