"""抽检: which conversations QA reviews after the fact, from the seed's sampling rules.

Per agent and day: 1% at random (at least one), every conversation shorter than 20 s or longer
than 200 s, every conversation with a finding plus the agent's previous and next one. An agent
with full marks in each of the two previous months gets the reduced sample instead: 5 a month
at random (one a day until the month's five are taken). Random picks are seeded by date and
agent, so the same day always gives the same sample.
"""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

SHORT_S = 20
LONG_S = 200
SHARE = 0.01
REDUCED_PER_MONTH = 5


def previous_months(day: str, count: int = 2) -> list[tuple[str, str]]:
    """(first day, last day) of each of the ``count`` calendar months before ``day``'s month."""
    first = datetime.date.fromisoformat(day).replace(day=1)
    months = []
    for _ in range(count):
        last = first - datetime.timedelta(days=1)
        first = last.replace(day=1)
        months.append((first.isoformat(), last.isoformat()))
    return months


def full_marks_agents(day: str, rows_between: Callable[[str, str], Sequence[Mapping[str, Any]]]) -> set[str]:
    """Agents whose every scored conversation was full marks in each of the two previous months."""
    qualified: set[str] | None = None
    for first, last in previous_months(day):
        perfect: dict[str, bool] = {}
        for row in rows_between(first, last):
            agent = row.get("agent_id")
            if agent:
                perfect[agent] = perfect.get(agent, True) and row["score"] >= row["max_score"]
        month = {agent for agent, ok in perfect.items() if ok}
        qualified = month if qualified is None else qualified & month
    return qualified or set()


def sample_day(day: str, rows: Sequence[Mapping[str, Any]], *, reduced: Collection[str] = (),
               taken_this_month: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """The day's review sample: one entry per conversation with every reason it was picked."""
    by_agent: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_agent.setdefault(str(row.get("agent_id") or "—"), []).append(row)
    picked: dict[str, dict[str, Any]] = {}

    def pick(row: Mapping[str, Any], reason: str) -> None:
        entry = picked.setdefault(row["conversation_id"], {"conversation_id": row["conversation_id"],
                                                           "agent_id": row.get("agent_id"), "reasons": []})
        if reason not in entry["reasons"]:
            entry["reasons"].append(reason)

    for agent, convs in sorted(by_agent.items()):
        convs = sorted(convs, key=lambda r: (r.get("opened_ms") or 0, r["conversation_id"]))
        rng = random.Random(f"{day}:{agent}")
        if agent in reduced:
            if (taken_this_month or {}).get(agent, 0) < REDUCED_PER_MONTH:
                pick(rng.choice(convs), "reduced_monthly")
            continue
        for row in rng.sample(convs, max(1, math.ceil(len(convs) * SHARE))):
            pick(row, "random_1pct")
        for index, row in enumerate(convs):
            duration = row.get("duration_s")
            if duration is not None and duration < SHORT_S:
                pick(row, "shorter_than_20s")
            if duration is not None and duration > LONG_S:
                pick(row, "longer_than_200s")
            if row["labels"]:
                pick(row, "has_finding")
                if index > 0:
                    pick(convs[index - 1], "before_a_finding")
                if index + 1 < len(convs):
                    pick(convs[index + 1], "after_a_finding")
    return sorted(picked.values(), key=lambda p: (str(p["agent_id"]), p["conversation_id"]))
