"""The nightly rollup as the floor reads it (SQLite and PostgreSQL): the floor's day by default, an empty
day refused, Excel-ready CSV (BOM, Chinese headers, no duplicate column, Chinese reasons), the review
sample capped per agent and day in the seed's priority, and an HTML report for a phone."""

from __future__ import annotations

import csv
import datetime
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from detectors import load_ruleset
from detectors.rubric import rubric_of
from tests.factories import DAY, T0, alert, conversation, rubric_for
from zhijian.reports.rollup import EmptyDay, cap_sample, floor_yesterday, run_rollup
from zhijian.store.database import Database

RUBRIC = rubric_of(load_ruleset().rubric)
ROOT = Path(__file__).resolve().parents[2]
UTC = datetime.UTC


def rows_of(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel on Chinese Windows reads the names right
    lines = raw.decode("utf-8-sig").splitlines()
    return next(csv.reader(lines[:1])), list(csv.DictReader(lines))


def test_a_rollup_on_a_utc_machine_after_16_utc_reports_the_floors_day() -> None:
    # 17:30 UTC on the 23rd is 01:30 on the 24th in Shanghai: the day that just ended there is the 23rd
    assert floor_yesterday(RUBRIC, datetime.datetime(2026, 11, 23, 17, 30, tzinfo=UTC)) == "2026-11-23"
    # 15:59 UTC is 23:59 in Shanghai: the 23rd is still running, so the report is the 22nd's
    assert floor_yesterday(RUBRIC, datetime.datetime(2026, 11, 23, 15, 59, tzinfo=UTC)) == "2026-11-22"
    # what a naive "yesterday" on the UTC machine would give at 17:30 (the 22nd) is not the floor's day
    assert floor_yesterday(RUBRIC, datetime.datetime(2026, 11, 23, 17, 30, tzinfo=UTC)) != "2026-11-22"


def test_the_cli_defaults_to_the_floors_yesterday_and_refuses_an_empty_day(tmp_path: Path) -> None:
    env = {**os.environ, "TZ": "UTC", "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
           "ZHIJIAN_DATA_DIR": str(tmp_path)}
    before = floor_yesterday(RUBRIC)
    refused = subprocess.run([sys.executable, "-m", "zhijian", "rollup", "--out", str(tmp_path / "out")], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 3 and "--allow-empty" in refused.stderr
    assert not (tmp_path / "out").exists()  # nothing published
    allowed = subprocess.run([sys.executable, "-m", "zhijian", "rollup", "--out", str(tmp_path / "out"),
                              "--allow-empty"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr
    days = {before, floor_yesterday(RUBRIC)}  # the same unless the floor's midnight passed meanwhile
    assert any(f"report-{day}.html" in allowed.stdout for day in days), allowed.stdout


def test_an_empty_day_is_refused_unless_allowed(store: Database, tmp_path: Path) -> None:
    with pytest.raises(EmptyDay):
        run_rollup(store, "2026-11-01", tmp_path / "refused", RUBRIC)
    assert not (tmp_path / "refused").exists()
    files = run_rollup(store, "2026-11-01", tmp_path / "allowed", RUBRIC, allow_empty=True)
    assert rows_of(files.agents_csv)[1] == []
    # alerts alone make a day worth reporting (nothing was scored yet, the floor still saw alerts)
    store.alerts.save([alert("e1", T0, team_id="t1", agent_id="A")])
    run_rollup(store, DAY, tmp_path / "alerts-only", RUBRIC)


@pytest.fixture
def shift(store: Database) -> None:
    summaries = [
        conversation("k1", "A", 0), conversation("k2", "A", 100, bad="嫌贵别买"),
        conversation("k3", "A", 200, bad="好的哦，请您稍等"), conversation("k4", "B", 300, slow=True),
        conversation("k5", "B", 400), conversation("k6", "C", 500, team="t2", bad="你自己想办法吧"),
    ]
    store.scores.save_scored(summaries, rubric_for)
    store.scores.save_scored([conversation("y1", "A", -86_400), conversation("y2", "B", -86_300, bad="嫌贵别买")],
                      rubric_for)  # the day before, for the day-on-day change


def test_chinese_headers_once_each_chinese_reasons_and_a_readable_report(store: Database, shift: None,
                                                                        tmp_path: Path) -> None:
    files = run_rollup(store, DAY, tmp_path, RUBRIC)
    head, agents = rows_of(files.agents_csv)
    assert len(head) == len(set(head))  # 礼貌用语使用率 (a KPI) and 问题·礼貌用语不足 (a label) are two columns
    assert head[:3] == ["坐席", "会话数", "消息数"]
    assert "礼貌用语使用率" in head and "问题·礼貌用语不足" in head and "分项·服务态度" in head
    by_agent = {r["坐席"]: r for r in agents}
    assert (by_agent["A"]["会话数"], by_agent["A"]["致命项会话数"], by_agent["A"]["问题·与顾客争执"]) == ("3", "1", "1")
    team_head, teams = rows_of(files.teams_csv)
    assert team_head[0] == "班组" and len(team_head) == len(set(team_head)) and len(teams) == 2
    sample_head, sample = rows_of(files.sample_csv)
    assert sample_head == ["会话", "坐席", "抽检原因"]
    assert {r["会话"]: r["抽检原因"] for r in sample}["k2"].startswith("严重问题（自动检出）")

    report = files.report_html.read_text(encoding="utf-8")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in report
    assert "平均首响（秒）" in report and "first_response_mean_s" not in report  # readable headers
    assert "分项得分" in report and "服务态度" in report  # the section breakdown
    assert "与前一日对比" in report and "前一日" in report  # the day-on-day change
    english = run_rollup(store, DAY, tmp_path / "en", RUBRIC, lang="en")
    head_en, _ = rows_of(english.agents_csv)
    assert "politeness_rate" in head_en and "label_politeness_rate" in head_en and "section_attitude" in head_en
    assert "Day on day" in english.report_html.read_text(encoding="utf-8")


def test_the_day_on_day_change_compares_with_the_day_before(store: Database, shift: None, tmp_path: Path) -> None:
    report = run_rollup(store, DAY, tmp_path, RUBRIC).report_html.read_text(encoding="utf-8")
    # 6 conversations on the day, 2 the day before
    assert "<tr><td>会话数</td><td>6</td><td>2</td><td>+4</td></tr>" in report


def sample_entry(conv: str, agent: str, *reasons: str) -> dict[str, Any]:
    return {"conversation_id": conv, "agent_id": agent, "reasons": list(reasons)}


def test_the_sample_is_capped_per_agent_in_the_seed_rules_priority() -> None:
    picked = [sample_entry("c1", "A", "random_1pct"), sample_entry("c2", "A", "before_a_finding"),
              sample_entry("c3", "A", "has_finding"), sample_entry("c4", "A", "longer_than_200s"),
              sample_entry("c5", "A", "after_a_finding", "random_1pct"), sample_entry("c6", "A", "has_finding"),
              sample_entry("d1", "B", "random_1pct")]
    kept = cap_sample(picked, 3)
    assert [e["conversation_id"] for e in kept if e["agent_id"] == "A"] == ["c3", "c4", "c6"]
    assert [e["conversation_id"] for e in kept if e["agent_id"] == "B"] == ["d1"]
    assert [e["conversation_id"] for e in cap_sample(picked, 4) if e["agent_id"] == "A"] == ["c2", "c3", "c4", "c6"]
    assert cap_sample(picked, 0) == []


def test_the_stored_sample_holds_at_most_the_cap(store: Database, tmp_path: Path) -> None:
    busy = [conversation(f"b{n}", "A", n * 100, bad="嫌贵别买" if n % 2 else None) for n in range(10)]
    store.scores.save_scored(busy, rubric_for)
    run_rollup(store, DAY, tmp_path, RUBRIC)
    stored = store.samples.of_day(DAY)
    assert len(stored) == 3 and all("critical_finding" in s["reasons"] for s in stored)
    run_rollup(store, DAY, tmp_path, RUBRIC, sample_cap=5)
    assert len(store.samples.of_day(DAY)) == 5
