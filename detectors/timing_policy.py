"""The response-time policy: thresholds and tiers of the rubric, as data (``[timing]``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

Tiers = tuple[tuple[float, int], ...]


@dataclass(frozen=True, slots=True)
class TimingPolicy:
    first_response_tiers: Tiers = ((10, 10), (20, 6), (25, 3))
    first_response_alert_s: float = 25
    avg_response_tiers: Tiers = ((30, 10), (40, 6), (50, 3))
    after_sales_avg_response_tiers: Tiers = ((30, 10), (60, 5))
    after_sales_teams: tuple[str, ...] = ()
    reply_rate_tiers: Tiers = ((1.0, 10), (0.98, 8), (0.95, 6), (0.92, 4))
    board_from_s: float = 15  # a waiting conversation appears on the waiting board from here
    waiting_warning_s: float = 30
    waiting_critical_s: float = 60
    customer_gone_s: float = 300  # a waiting customer silent this long may have left (顾客可能已离开)
    reorder_window_s: float = 10
    inactivity_close_s: float = 600
    closed_retention_s: float = 3600
    bot_counts_as_response: bool = False
    unanswered_alert: bool = True


def _tiers(value: Any, name: str) -> Tiers:
    try:
        tiers = tuple((float(bound), int(points)) for bound, points in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a list of [bound, points] pairs") from None
    return tiers


def seconds_points(seconds: float, tiers: Sequence[tuple[float, int]]) -> int:
    """Points for a duration: the first tier whose upper bound it does not exceed, else 0."""
    for bound, points in tiers:
        if seconds <= bound:
            return points
    return 0


def share_points(share: float, tiers: Sequence[tuple[float, int]]) -> int:
    """Points for a share (reply rate): the first tier whose minimum it reaches, else 0."""
    for minimum, points in tiers:
        if share >= minimum - 1e-9:
            return points
    return 0


def parse_timing(raw: Mapping[str, Any]) -> TimingPolicy:
    known = {f.name for f in fields(TimingPolicy)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name.endswith("_tiers"):
            values[name] = _tiers(value, name)
        elif name == "after_sales_teams":
            values[name] = tuple(str(team) for team in value)
        elif name in ("bot_counts_as_response", "unanswered_alert"):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: expected true or false")
            values[name] = value
        else:
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}: expected a number ≥ 0")
            values[name] = float(value)
    policy = TimingPolicy(**values)
    if not policy.board_from_s <= policy.waiting_warning_s <= policy.waiting_critical_s:
        raise ValueError("expected board_from_s ≤ waiting_warning_s ≤ waiting_critical_s")
    return policy


@lru_cache(maxsize=256)
def _cached(items: tuple[tuple[str, Any], ...]) -> TimingPolicy:
    return parse_timing(dict(items))


def timing_policy(raw: Mapping[str, Any]) -> TimingPolicy:
    """``parse_timing`` with a cache: the same section gives the same policy object."""
    def freeze(value: Any) -> Any:
        return tuple(freeze(v) for v in value) if isinstance(value, list | tuple) else value
    return _cached(tuple(sorted((k, freeze(v)) for k, v in raw.items())))
