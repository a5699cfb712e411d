"""Weekly and monthly rollups (issue 17, item 7): ranked, with the change against the previous period."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.factories import DAY, conversation, save
from zhijian.reports.period import period_of, previous, run_period_rollup
from zhijian.reports.rollup import EmptyDay
from zhijian.store.database import Database

WEEK = 7 * 86_400


def rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))


def test_periods_are_monday_to_sunday_and_calendar_months() -> None:
    assert DAY == "2026-11-18"  # a Wednesday
    week = period_of("week", DAY)
    assert (week.name, week.first, week.last) == ("2026-W47", "2026-11-16", "2026-11-22")
    assert (previous(week).first, previous(week).last) == ("2026-11-09", "2026-11-15")
    month = period_of("month", DAY)
    assert (month.name, month.first, month.last) == ("2026-11", "2026-11-01", "2026-11-30")
    assert previous(month).name == "2026-10" and previous(period_of("month", "2026-03-31")).last == "2026-02-28"
    with pytest.raises(ValueError):
        period_of("year", DAY)


def test_weekly_and_monthly_rankings_with_the_change(store: Database, tmp_path: Path) -> None:
    # clean: 100. slow (first answer after 22 s): first response 3 of 10, average (22 + 5)/2 = 13.5 s → 10: 93
    save(store, [conversation("w47-a1", "A", 0), conversation("w47-a2", "A", 600, slow=True),
                 conversation("w47-b1", "B", 1200, slow=True),
                 conversation("w46-a1", "A", -WEEK, slow=True), conversation("w46-b1", "B", -WEEK + 600),
                 conversation("oct-c1", "C", -30 * 86_400)])
    files = run_period_rollup(store, "week", DAY, tmp_path, lang="en")
    agents = rows(files.agents_csv)
    head = agents[0]
    at = {name: head.index(name) for name in ("rank", "agent_id", "mean_score", "previous_mean_score",
                                              "mean_score_change", "previous_rank", "rank_change", "conversations")}
    # W47: A (100 + 93)/2 = 96.5 → 1st, B 93 → 2nd. W46: B 100 → 1st, A 93 → 2nd.
    assert [[r[at[k]] for k in ("rank", "agent_id", "conversations", "mean_score", "previous_mean_score",
                                "mean_score_change", "previous_rank", "rank_change")] for r in agents[1:]] == [
        ["1", "A", "2", "96.5", "93.0", "3.5", "2", "1"],  # +3.5 points, up one place
        ["2", "B", "1", "93.0", "100.0", "-7.0", "1", "-1"]]
    report = files.report_html.read_text(encoding="utf-8")
    assert "2026-W47 (2026-11-16 – 2026-11-22)" in report and "2026-W46" in report and "<script" not in report
    again = run_period_rollup(store, "week", DAY, tmp_path, lang="en")
    assert again.agents_csv.read_bytes() == files.agents_csv.read_bytes()  # the same period, the same bytes

    month = rows(run_period_rollup(store, "month", DAY, tmp_path, lang="en").agents_csv)
    # November: B (93 + 100)/2 = 96.5 → 1st; A (100 + 93 + 93)/3 = 95.333 → 2nd; October had only C
    assert [[r[at[k]] for k in ("rank", "agent_id", "mean_score", "previous_rank")] for r in month[1:]] == [
        ["1", "B", "96.5", ""], ["2", "A", "95.333", ""]]
    with pytest.raises(EmptyDay):
        run_period_rollup(store, "month", "2026-09-10", tmp_path)
