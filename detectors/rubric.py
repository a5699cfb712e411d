"""The scorecard as data (``[rubric]`` of the rule set): sections, items, deductions, fatal labels."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from detectors.timing_policy import TimingPolicy

ITEMS = ("politeness", "greeting", "closing", "first_response", "avg_response", "reply_rate")
SCORED_LABELS = ("banned_word", "impolite_address", "forbidden_phrase", "conflict", "deflection", "pii_leak",
                 "missing_greeting", "missing_closing", "politeness_rate", "unanswered_at_end")


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    points: int
    items: Mapping[str, int] = field(default_factory=dict)  # item → its maximum points
    deductions: Mapping[str, int] = field(default_factory=dict)  # label → points off per finding
    human_items: Mapping[str, int] = field(default_factory=dict)  # scored by a QA reviewer: pending until then


@dataclass(frozen=True, slots=True)
class Shift:
    name: str
    start_minute: int
    end_minute: int

    def contains(self, minute: int) -> bool:
        if self.end_minute < self.start_minute:  # across midnight (22:00–08:00)
            return minute >= self.start_minute or minute < self.end_minute
        return self.start_minute <= minute < self.end_minute


# last month's mean score as a share of the maximum → the factor on the random count (our reading of "依据客服代表
# 上月服务得分情况,增加或减少质检录音条数": ≥ 95 % half, ≥ 85 % as is, ≥ 70 % one and a half, below twice)
SCORE_FACTORS = ((0.95, 0.5), (0.85, 1.0), (0.7, 1.5), (0.0, 2.0))


@dataclass(frozen=True, slots=True)
class Sampling:
    """抽检 (``[rubric.sampling]``), from 客服中心质检规范及细则 (shared/rubrics/000, 质检方式 1–5): the share of each
    agent's volume reviewed, per day or per month; calls under ``short_s``; calls over ``long_s`` only in periods
    (the shop's day) whose mean response missed the target; an agent's previous and next conversation around a
    confirmed or critical problem; a reduced sample after full-mark months, for one month; the count adjusted by
    last month's score; at most ``cap`` a day per agent."""

    share: float = 0.01  # "当月抽取1%的电话进行抽样"
    per: str = "day"  # day: share of the day's volume; month: share of last month's volume, spread over the month
    minimum: int = 1  # random picks per agent and period, at least
    cap: int = 3  # conversations per agent and day, in the reasons' priority
    short_s: float = 20  # "对通话低于20秒的话单进行质检"
    long_s: float = 200  # "对20秒接通率未达标时段质检通话时长超过200秒的话单"
    response_target_s: float | None = None  # mean response above this misses the target (None: first avg tier)
    full_months: int = 2  # "连续两个月服务质量满分的客服代表从第三个月起只抽取5条录音"
    reduced_count: int = 5
    reduced_span_months: int = 1  # "免检期限为一个月,第四个月起质检录音条数恢复正常"
    # "依据客服代表上月服务得分情况,增加或减少质检录音条数": last month's mean score as a share of max → factor
    score_factors: tuple[tuple[float, float], ...] = SCORE_FACTORS

    def factor(self, last_month_share: float | None) -> float:
        """The random count's factor for an agent whose last month's mean was ``last_month_share`` of max."""
        if last_month_share is None:
            return 1.0
        return next((f for floor, f in self.score_factors if last_month_share >= floor), self.score_factors[-1][1])


def parse_sampling(raw: Mapping[str, Any] | None) -> Sampling:
    raw = raw or {}
    known = {"share", "per", "minimum", "cap", "short_s", "long_s", "response_target_s", "full_months",
             "reduced_count", "reduced_span_months", "score_factors"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"sampling: unknown keys {sorted(unknown)}")
    factors = tuple((float(a), float(b)) for a, b in raw.get("score_factors", SCORE_FACTORS))
    target = raw.get("response_target_s")
    sampling = Sampling(float(raw.get("share", 0.01)), str(raw.get("per", "day")), int(raw.get("minimum", 1)),
                        int(raw.get("cap", 3)), float(raw.get("short_s", 20)), float(raw.get("long_s", 200)),
                        None if target is None else float(target), int(raw.get("full_months", 2)),
                        int(raw.get("reduced_count", 5)), int(raw.get("reduced_span_months", 1)), factors)
    if not 0 <= sampling.share <= 1 or sampling.per not in ("day", "month"):
        raise ValueError("sampling: share must be within 0–1 and per day or month")
    if min(sampling.minimum, sampling.cap, sampling.reduced_count, sampling.reduced_span_months) < 0 \
            or sampling.full_months < 1:
        raise ValueError("sampling: counts must be 0 or more (full_months 1 or more)")
    if not factors or factors[-1][0] > 0 or any(f < 0 for _, f in factors) or \
            [a for a, _ in factors] != sorted((a for a, _ in factors), reverse=True):
        raise ValueError("sampling: score_factors need descending score shares down to 0 and factors ≥ 0")
    return sampling


@dataclass(frozen=True, slots=True)
class Rubric:
    sections: tuple[Section, ...]
    max_score: int = 100
    timezone: str = "Asia/Shanghai"
    fatal_labels: frozenset[str] = frozenset()
    bonus_max: int = 0
    shifts: tuple[Shift, ...] = ()
    offline_hours: tuple[Shift, ...] = ()  # local hours the shop is closed (留言 time), besides outside the shifts
    offline_reply_s: int = 86_400  # an offline message answered within this is answered in time (24 h rule)
    appeal_window_h: float = 72  # an agent may appeal a finding this long after the result is published
    appeal_decision_h: float = 48  # QA decides an appeal within this, or the appeal is escalated
    manual_labels: Mapping[str, str] = field(default_factory=dict)  # label → name: findings only a reviewer adds
    bonus_above_max: bool = False  # 亮点 is an 附加项: it may lift a chat past max_score (up to + bonus_max)
    scorecard: str = "default"  # the preset in force (``scorecard = "<name>"`` of [rubric])
    sampling: Sampling = field(default_factory=Sampling)  # 抽检 ([rubric.sampling])
    timing: TimingPolicy | None = None  # the shop's response-time tiers (attached by the caller that has them)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local(self, ts_ms: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(ts_ms / 1000, tz=self.zone)

    def day(self, ts_ms: int) -> str:
        return self.local(ts_ms).date().isoformat()

    def shift(self, ts_ms: int) -> str | None:
        local = self.local(ts_ms)
        minute = local.hour * 60 + local.minute
        return next((s.name for s in self.shifts if s.contains(minute)), None)

    def offline(self, ts_ms: int) -> bool:
        """The shop is offline then: outside every shift (when shifts are set), or inside ``offline_hours``."""
        local = self.local(ts_ms)
        minute = local.hour * 60 + local.minute
        if self.shifts and not any(s.contains(minute) for s in self.shifts):
            return True
        return any(s.contains(minute) for s in self.offline_hours)


def _minutes(text: str) -> int:
    hours, _, minutes = str(text).partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60:
        raise ValueError(f"time of day out of range: {text!r}")
    return value


def parse_rubric(raw: Mapping[str, Any]) -> Rubric:
    """The scorecard in force: ``scorecard = "<name>"`` picks ``presets.<name>``, whose keys replace the
    rubric's own (sections, fatal labels, …); every preset is validated, chosen or not."""
    presets = raw.get("presets") or {}
    if not isinstance(presets, Mapping) or not all(isinstance(p, Mapping) for p in presets.values()):
        raise ValueError("presets: expected tables of scorecards")
    own = {k: v for k, v in raw.items() if k not in ("presets", "scorecard")}
    for name, preset in presets.items():
        if name == "default" or "presets" in preset or "scorecard" in preset:
            raise ValueError(f"presets.{name}: a preset cannot be named default or hold presets")
        try:
            _parse({**own, **preset}, str(name))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"presets.{name}: {exc}") from None
    name = str(raw.get("scorecard") or "default")
    if name == "default":
        return _parse(own, name)
    if name not in presets:
        raise ValueError(f"scorecard {name!r}: no such preset (default, {', '.join(sorted(presets))})")
    return _parse({**own, **presets[name]}, name)


def _parse(raw: Mapping[str, Any], scorecard: str) -> Rubric:
    manual = {str(k): str(v) for k, v in (raw.get("manual_labels") or {}).items()}
    if set(manual) & set(SCORED_LABELS):
        raise ValueError(f"manual_labels: {sorted(set(manual) & set(SCORED_LABELS))} are automatic labels")
    labels = set(SCORED_LABELS) | set(manual)
    sections = []
    for index, item in enumerate(raw.get("sections") or []):
        where = f"sections[{index}]"
        items = {str(k): int(v) for k, v in (item.get("items") or {}).items()}
        deductions = {str(k): int(v) for k, v in (item.get("deductions") or {}).items()}
        human = {str(k): int(v) for k, v in (item.get("human_items") or {}).items()}
        unknown = (set(items) - set(ITEMS)) | (set(deductions) - labels)
        if unknown:
            raise ValueError(f"{where}: unknown item or label {sorted(unknown)}")
        if set(human) & set(ITEMS) or any(v < 0 for v in human.values()):
            raise ValueError(f"{where}: human_items need their own names and points ≥ 0")
        if sum(items.values()) + sum(human.values()) > int(item["points"]):
            raise ValueError(f"{where}: items add up to more than the section's points")
        sections.append(Section(str(item["name"]), int(item["points"]), items, deductions, human))
    if not sections:
        raise ValueError("a rubric needs sections")
    max_score = int(raw.get("max_score", 100))
    if sum(s.points for s in sections) != max_score:
        raise ValueError(f"sections add up to {sum(s.points for s in sections)}, not max_score {max_score}")
    timezone = str(raw.get("timezone", "Asia/Shanghai"))
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {timezone!r}") from None
    fatal = frozenset(str(label) for label in raw.get("fatal_labels") or [])
    if fatal - labels:
        raise ValueError(f"fatal_labels: unknown {sorted(fatal - labels)}")
    shifts = tuple(Shift(str(name), _minutes(start), _minutes(end)) for name, start, end in raw.get("shifts") or [])
    offline = tuple(Shift("offline", _minutes(start), _minutes(end)) for start, end in raw.get("offline_hours") or [])
    reply_s = int(raw.get("offline_reply_s", 86_400))
    window_h, decision_h = float(raw.get("appeal_window_h", 72)), float(raw.get("appeal_decision_h", 48))
    if reply_s <= 0 or window_h <= 0 or decision_h <= 0:
        raise ValueError("offline_reply_s, appeal_window_h and appeal_decision_h must be positive")
    return Rubric(tuple(sections), max_score, timezone, fatal, int(raw.get("bonus_max", 0)), shifts, offline, reply_s,
                  window_h, decision_h, manual, bool(raw.get("bonus_above_max", False)), scorecard=scorecard,
                  sampling=parse_sampling(raw.get("sampling")))


@lru_cache(maxsize=64)
def _cached(key: str) -> Rubric:
    import json

    return parse_rubric(json.loads(key))


def rubric_of(raw: Mapping[str, Any]) -> Rubric:
    """``parse_rubric`` with a cache keyed by the section's content."""
    import json

    return _cached(json.dumps(raw, sort_keys=True, ensure_ascii=False))
