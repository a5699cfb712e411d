"""KPIs from scored conversations: the scoreboard, an agent's day, a team's day, the rollup.

Pure functions over the rows of ``conversation_scores`` (as ``Database.scores`` returns them),
so the live API and the nightly rollup compute the same figures the same way.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 3) if present else None


def p90(values: Iterable[float | None]) -> float | None:
    """Nearest-rank 90th percentile."""
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    return present[max(0, math.ceil(0.9 * len(present)) - 1)]


def _offline_pending(row: Mapping[str, Any]) -> bool:
    """Closed on a question left while the shop was offline, still inside its 24 hours: not yet unanswered."""
    breakdown = row.get("breakdown")
    return isinstance(breakdown, Mapping) and bool(breakdown.get("offline_pending"))


def reply_counts(rows: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(咨询人数, 回复人数): conversations in which the customer asked (one turn or more), and those of
    them the agent answered at least once. The seed's 回复率 is the second over the first ("当日所有顾客咨询，
    客服都回应了，那么旺旺回复率是100%"); a conversation nobody answered counts against its assigned agent."""
    asked = [r for r in rows if r["turns"] and not (r["answered_turns"] == 0 and _offline_pending(r))]
    return len(asked), sum(1 for r in asked if r["answered_turns"])


def summarise(rows: Sequence[Mapping[str, Any]], *, waiting_alerts: Mapping[str, int] | None = None,
              appeals: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """KPIs of a group of scored conversations (one agent's, a team's, a shift's)."""
    labels: Counter[str] = Counter()
    for row in rows:
        labels.update(row["labels"])
    turns = sum(r["turns"] for r in rows)
    answered = sum(r["answered_turns"] for r in rows)
    inquiries, replied = reply_counts(rows)
    ids = {r["conversation_id"] for r in rows}
    sections: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for section in row["breakdown"]["breakdown"]:
            sections[section["section"]].append(section["points"])
    return {
        "conversations": len(rows),
        "messages": sum(r["agent_messages"] + r["customer_messages"] for r in rows),
        "agent_messages": sum(r["agent_messages"] for r in rows),
        "mean_score": _mean(r["score"] for r in rows),
        "fatal": sum(1 for r in rows if r["fatal"]),
        "first_response_mean_s": _mean(r["first_response_s"] for r in rows),
        "first_response_p90_s": p90(r["first_response_s"] for r in rows),
        "avg_response_s": _mean(r["avg_response_s"] for r in rows),
        "inquiries": inquiries,
        "answered_inquiries": replied,
        "reply_rate": round(replied / inquiries, 4) if inquiries else None,
        "turn_reply_rate": round(answered / turns, 4) if turns else None,
        "politeness_rate": _mean(r["politeness_rate"] for r in rows),
        "waiting_alerts": sum((waiting_alerts or {}).get(c, 0) for c in ids),
        "labels": dict(sorted(labels.items())),
        "sections": {name: _mean(points) for name, points in sections.items()},
        "appeals_opened": sum(1 for a in appeals if a["conversation_id"] in ids),
        "appeals_accepted": sum(1 for a in appeals if a["conversation_id"] in ids and a["status"] == "accepted"),
    }


def group_by(rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row.get(key) or "—")].append(row)
    return dict(sorted(groups.items()))


def scoreboard(rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """One line per agent, best mean score first (ties: fewer fatal, then agent id)."""
    board = [{"agent_id": agent, "team_id": group[-1].get("team_id"), **summarise(group, **kwargs)}
             for agent, group in group_by(rows, "agent_id").items()]
    board.sort(key=lambda a: (-(a["mean_score"] or 0), a["fatal"], a["agent_id"]))
    return board


def by_hour(rows: Sequence[Mapping[str, Any]], rubric_hour: Any) -> list[dict[str, Any]]:
    """Mean score per local hour of closing: the agent's shift as a sparkline."""
    hours: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        if row.get("closed_ms") is not None:
            hours[rubric_hour(row["closed_ms"])].append(row["score"])
    return [{"hour": hour, "conversations": len(scores), "mean_score": _mean(scores)}
            for hour, scores in sorted(hours.items())]
