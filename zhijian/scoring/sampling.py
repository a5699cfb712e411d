"""抽检: which conversations QA reviews after the fact, from the seed's sampling rules.

The seed (客服中心质检规范及细则, shared/rubrics/000, 质检方式) and how each rule reads here, configured per shop under
``[rubric.sampling]`` (``detectors.rubric.Sampling``):

1. "按每个客服代表上月接续话单总量为依据,当月抽取1%的电话进行抽样" — ``share`` (1 %) of the agent's volume at random
   (at least ``minimum``): of the day's conversations (``per = "day"``, the default, as the e-commerce 方案 in the same
   file: "每位客服每天需要处理的会话量按比例随机抽取样本"), or of last month's volume spread evenly over this month
   (``per = "month"``: by day *d* of a month of *D* days, ⌈quota·d/D⌉ of the month's quota have been drawn).
2. "对20秒接通率未达标时段质检通话时长超过200秒的话单" — conversations longer than ``long_s`` (200 s), only on a day
   whose mean response in that shop missed the target (``response_target_s``; by default the first tier of the
   shop's 平均响应 tiers, the KPI table's "<=30秒").
3. "对通话低于20秒的话单进行质检" — every conversation shorter than ``short_s`` (20 s).
4. "质检过程中发现服务问题,应对该录音前后录音依次听取录音" — the agent's previous and next conversation, only around
   a problem: a finding a reviewer confirmed (or added), or a *critical* automatic one (a fatal score, or a counted
   label whose rule is critical in the shop's rules) — not any label.
5. "依据客服代表上月服务得分情况,增加或减少质检录音条数;连续两个月服务质量满分的客服代表从第三个月起只抽取5条录音,
   免检期限为一个月,第四个月起质检录音条数恢复正常" — the random count is multiplied by a factor from last month's mean
   score (``score_factors``); an agent with full marks in each of the ``full_months`` (2) months before gets only
   ``reduced_count`` (5) that month, one a day, for ``reduced_span_months`` (1) month; after it the normal sample
   resumes, and two new full-mark months are needed before the next reduced month.

Everything is pure over rows of ``conversation_scores``; random picks are seeded by date and agent, so the same day
always gives the same sample. At most ``cap`` conversations per agent and day are kept, in the reasons' priority.
"""

from __future__ import annotations

import calendar
import datetime
import math
import random
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.rubric import Sampling

SHORT_S = 20
LONG_S = 200
SHARE = 0.01
REDUCED_PER_MONTH = 5
DEFAULT_TARGET_S = 30.0  # KPI table: 旺旺响应时间 "<=30秒" full marks

# the order in which an agent's picks survive the day's cap: a problem first, then the short/long, then a
# problem's neighbours, then the random picks
REASON_PRIORITY = {"has_finding": 0, "critical_finding": 0, "confirmed_finding": 0, "shorter_than_20s": 1,
                   "longer_than_200s": 1, "before_a_finding": 2, "after_a_finding": 2, "random_1pct": 3,
                   "reduced_monthly": 3}

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LastMonth:
    """An agent's last month, for rule 5: how many conversations, and the mean score as a share of the maximum."""

    volume: int
    score_share: float | None


def previous_months(day: str, count: int = 2) -> list[tuple[str, str]]:
    """(first day, last day) of each of the ``count`` calendar months before ``day``'s month."""
    first = datetime.date.fromisoformat(day).replace(day=1)
    months = []
    for _ in range(count):
        last = first - datetime.timedelta(days=1)
        first = last.replace(day=1)
        months.append((first.isoformat(), last.isoformat()))
    return months


def full_marks_agents(day: str, rows_between: Callable[[str, str], Sequence[Row]], months: int = 2) -> set[str]:
    """Agents whose every scored conversation was full marks in each of the ``months`` previous months."""
    qualified: set[str] | None = None
    for first, last in previous_months(day, months):
        perfect: dict[str, bool] = {}
        for row in rows_between(first, last):
            agent = row.get("agent_id")
            if agent:
                perfect[agent] = perfect.get(agent, True) and row["score"] >= row["max_score"]
        month = {agent for agent, ok in perfect.items() if ok}
        qualified = month if qualified is None else qualified & month
    return qualified or set()


def last_month_of(rows: Sequence[Row]) -> dict[str, LastMonth]:
    """Per agent: last month's volume and mean score as a share of the maximum (rows of that month)."""
    scores: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.get("agent_id"):
            maximum = float(row.get("max_score") or 100)
            scores[str(row["agent_id"])].append(float(row["score"]) / maximum if maximum else 0.0)
    return {agent: LastMonth(len(values), sum(values) / len(values)) for agent, values in scores.items()}


def missed_target(rows: Sequence[Row], target_s: float) -> bool:
    """The day missed the response target: the mean of the conversations' average response is above it."""
    values = [float(r["avg_response_s"]) for r in rows if r.get("avg_response_s") is not None]
    return bool(values) and sum(values) / len(values) > target_s


def _count(amount: float) -> int:
    return math.ceil(round(amount, 9))  # 200 × 0.01 is 2, not 3 from a rounding error


def random_count(config: Sampling, volume_today: int, day: str, *, last: LastMonth | None,
                 taken_this_month: int = 0) -> int:
    """How many of an agent's conversations of ``day`` to draw at random (rule 1, adjusted by rule 5)."""
    factor = config.factor(last.score_share if last else None)
    if config.per == "month" and last is not None and last.volume:
        date = datetime.date.fromisoformat(day)
        days = calendar.monthrange(date.year, date.month)[1]
        quota = max(config.minimum, _count(last.volume * config.share * factor))
        due = _count(quota * date.day / days)
        return max(0, min(volume_today, due - taken_this_month))
    return min(volume_today, max(config.minimum, _count(volume_today * config.share * factor)))


def sample_day(day: str, rows: Sequence[Row], *, config_for: Callable[[str], Sampling] | None = None,
               reduced: Collection[str] = (), taken_this_month: Mapping[str, int] | None = None,
               confirmed: Collection[str] = (), critical: Callable[[Row], bool] | None = None,
               last_month: Mapping[str, LastMonth] | None = None,
               random_taken: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """The day's review sample before the cap: one entry per conversation with every reason it was picked.

    ``config_for``: shop → its sampling settings; ``reduced``: agents on the reduced sample this month and
    ``taken_this_month`` their reduced picks so far; ``confirmed``: conversations with a finding a reviewer
    confirmed or added; ``critical``: whether a row has a critical automatic finding (default: a fatal score);
    ``last_month``: per agent, last month's volume and score; ``random_taken``: random picks drawn earlier this
    month (``per = "month"``)."""
    settings = config_for or (lambda _shop: Sampling())
    is_critical = critical or (lambda row: bool(row.get("fatal")))
    by_agent: dict[str, list[Row]] = {}
    by_shop: dict[str, list[Row]] = {}
    for row in rows:
        by_agent.setdefault(str(row.get("agent_id") or "—"), []).append(row)
        by_shop.setdefault(str(row.get("shop_id") or ""), []).append(row)
    missed = {}
    for shop, group in by_shop.items():
        config = settings(shop)
        missed[shop] = missed_target(group, config.response_target_s if config.response_target_s is not None
                                     else DEFAULT_TARGET_S)
    picked: dict[str, dict[str, Any]] = {}

    def pick(row: Row, reason: str) -> None:
        entry = picked.setdefault(row["conversation_id"], {"conversation_id": row["conversation_id"],
                                                           "agent_id": row.get("agent_id"), "reasons": []})
        if reason not in entry["reasons"]:
            entry["reasons"].append(reason)

    for agent, convs in sorted(by_agent.items()):
        convs = sorted(convs, key=lambda r: (r.get("opened_ms") or 0, r["conversation_id"]))
        config = settings(str(convs[0].get("shop_id") or ""))
        rng = random.Random(f"{day}:{agent}")
        if agent in reduced:
            if (taken_this_month or {}).get(agent, 0) < config.reduced_count:
                pick(rng.choice(convs), "reduced_monthly")
            continue
        count = random_count(config, len(convs), day, last=(last_month or {}).get(agent),
                             taken_this_month=(random_taken or {}).get(agent, 0))
        for row in rng.sample(convs, count):
            pick(row, "random_1pct")
        for index, row in enumerate(convs):
            rule = settings(str(row.get("shop_id") or ""))
            duration = row.get("duration_s")
            if duration is not None and duration < rule.short_s:
                pick(row, "shorter_than_20s")
            if duration is not None and duration > rule.long_s and missed[str(row.get("shop_id") or "")]:
                pick(row, "longer_than_200s")
            problem = None
            if row["conversation_id"] in confirmed:
                problem = "confirmed_finding"
            elif is_critical(row):
                problem = "critical_finding"
            if problem is not None:
                pick(row, problem)
                if index > 0:
                    pick(convs[index - 1], "before_a_finding")
                if index + 1 < len(convs):
                    pick(convs[index + 1], "after_a_finding")
    return sorted(picked.values(), key=lambda p: (str(p["agent_id"]), p["conversation_id"]))


def cap_sample(sample: Sequence[Mapping[str, Any]], cap_for: Callable[[str], int]) -> list[dict[str, Any]]:
    """At most ``cap_for(agent)`` conversations per agent, the highest-priority reasons first (ties: the
    conversation id, so the same day always gives the same sample)."""
    kept: list[dict[str, Any]] = []
    by_agent: dict[str, list[Mapping[str, Any]]] = {}
    for entry in sample:
        by_agent.setdefault(str(entry["agent_id"]), []).append(entry)
    for agent, entries in sorted(by_agent.items()):
        ranked = sorted(entries, key=lambda e: (min(REASON_PRIORITY.get(r, 9) for r in e["reasons"]),
                                                str(e["conversation_id"])))
        kept.extend(dict(e) for e in ranked[:max(0, cap_for(agent))])
    return sorted(kept, key=lambda p: (str(p["agent_id"]), p["conversation_id"]))


def reduced_agents(day: str, rows_between: Callable[[str, str], Sequence[Row]], config: Sampling,
                   reduced_before: Callable[[str, str], Collection[str]]) -> set[str]:
    """Agents on the reduced sample in ``day``'s month: full marks in each of the ``full_months`` months before, and
    not already reduced for ``reduced_span_months`` months in a row just before (``reduced_before(first, last)``:
    agents with a reduced pick in that span) — after the exemption, normal sampling resumes."""
    if config.reduced_span_months <= 0:
        return set()
    qualified = full_marks_agents(day, rows_between, config.full_months)
    if not qualified:
        return set()
    span = previous_months(day, config.reduced_span_months)
    exhausted: set[str] | None = None
    for first, last in span:  # reduced in every month of the span just before: the exemption is used up
        month = set(reduced_before(first, last))
        exhausted = month if exhausted is None else exhausted & month
    return qualified - (exhausted or set())
