"""抽检 rules on plain rows."""

from __future__ import annotations

from typing import Any

from zhijian.scoring.sampling import previous_months, sample_day


def row(conv: str, agent: str, opened: int, duration: float, labels: dict[str, int] | None = None) -> dict[str, Any]:
    return {"conversation_id": conv, "agent_id": agent, "opened_ms": opened, "duration_s": duration,
            "labels": labels or {}, "score": 100.0, "max_score": 100}


def reasons(picked: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {p["conversation_id"]: p["reasons"] for p in picked}


def test_short_long_and_finding_neighbours_are_sampled_and_the_pick_is_reproducible() -> None:
    rows = [row(f"c{n}", "A", n, 60) for n in range(300)]
    rows[10] = row("c10", "A", 10, 12)  # shorter than 20 s
    rows[20] = row("c20", "A", 20, 250)  # longer than 200 s
    rows[30] = row("c30", "A", 30, 60, {"conflict": 1})
    picked = reasons(sample_day("2026-11-23", rows))
    assert "shorter_than_20s" in picked["c10"]
    assert "longer_than_200s" in picked["c20"]
    assert "has_finding" in picked["c30"] and "before_a_finding" in picked["c29"] and "after_a_finding" in picked["c31"]
    randoms = [c for c, why in picked.items() if "random_1pct" in why]
    assert len(randoms) == 3  # 1% of 300
    assert reasons(sample_day("2026-11-23", list(reversed(rows)))) == picked  # order of rows does not matter
    assert [c for c, why in reasons(sample_day("2026-11-24", rows)).items() if "random_1pct" in why] != randoms


def test_the_reduced_sample_stops_at_five_a_month() -> None:
    rows = [row("c1", "P", 1, 60, {"conflict": 1}), row("c2", "P", 2, 10)]
    assert reasons(sample_day("2026-11-23", rows, reduced={"P"}, taken_this_month={"P": 4})) in (
        {"c1": ["reduced_monthly"]}, {"c2": ["reduced_monthly"]})
    assert sample_day("2026-11-23", rows, reduced={"P"}, taken_this_month={"P": 5}) == []


def test_previous_months_cross_the_year() -> None:
    assert previous_months("2026-01-15") == [("2025-12-01", "2025-12-31"), ("2025-11-01", "2025-11-30")]
