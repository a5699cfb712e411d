"""The per-agent running tally, applied exactly once per activity record.

Activity records reach the tally agent at least once (a worker may crash after
producing them and before committing its input offset). Each record carries the
partition and offset of the chat message that produced it; the tally keeps, per
source partition, the highest offset already applied and ignores anything at or
below it. Offsets within one partition only grow, so this is exact and the state
stays small (one integer per source partition).
"""

from __future__ import annotations

from typing import Any

Tally = dict[str, Any]


def empty_tally(agent_id: str, team_id: str | None) -> Tally:
    return {
        "agent_id": agent_id,
        "team_id": team_id,
        "messages": 0,
        "findings": 0,  # every rule hit, alerted or throttled
        "by_rule": {},
        "first_responses": 0,
        "first_response_ms_total": 0,
        "days": {},  # local day → closed conversations, score sum, fatal (the live running score)
        "applied": {},
    }


DAYS_KEPT = 7


def _apply_score(tally: Tally, record: dict[str, Any]) -> None:
    days = {day: dict(v) for day, v in tally.get("days", {}).items()}
    bucket = days.setdefault(record["day"], {"conversations": 0, "score_sum": 0.0, "fatal": 0})
    bucket["conversations"] += 1
    bucket["score_sum"] = round(bucket["score_sum"] + float(record["score"]), 3)
    bucket["fatal"] += int(bool(record["fatal"]))
    tally["days"] = dict(sorted(days.items())[-DAYS_KEPT:])


def apply_activity(tally: Tally | None, record: dict[str, Any]) -> tuple[Tally, bool]:
    """Return the new tally and whether ``record`` was applied (False: already counted)."""
    agent_id = record["agent_id"]
    if tally is None:
        tally = empty_tally(agent_id, record.get("team_id"))
    source_partition = f"{record.get('src_topic', '')}:{record['src_partition']}"
    source_offset = int(record["src_offset"])
    if source_offset <= tally["applied"].get(source_partition, -1):
        return tally, False

    tally = dict(tally)
    tally["applied"] = {**tally["applied"], source_partition: source_offset}
    if record.get("team_id") is not None:
        tally["team_id"] = record["team_id"]
    if record.get("kind") == "scored":  # a conversation of this agent closed with this score
        _apply_score(tally, record)
        return tally, True
    tally["messages"] += 1
    rules: list[str] = record.get("rules", [])
    if rules:
        by_rule = dict(tally["by_rule"])
        for rule in rules:
            by_rule[rule] = by_rule.get(rule, 0) + 1
        tally["by_rule"] = by_rule
        tally["findings"] += len(rules)
    if record.get("first_response_ms") is not None:
        tally["first_responses"] += 1
        tally["first_response_ms_total"] += int(record["first_response_ms"])
    return tally, True


def public_view(tally: Tally) -> dict[str, Any]:
    """The tally without bookkeeping, with the mean first response in seconds."""
    count = tally["first_responses"]
    mean_s = tally["first_response_ms_total"] / count / 1000 if count else None
    return {
        "agent_id": tally["agent_id"],
        "team_id": tally["team_id"],
        "messages": tally["messages"],
        "findings": tally["findings"],
        "by_rule": tally["by_rule"],
        "first_responses": count,
        "first_response_mean_s": None if mean_s is None else round(mean_s, 3),
        "days": {day: {**v, "mean_score": round(v["score_sum"] / v["conversations"], 3)}
                 for day, v in tally.get("days", {}).items()},
    }
