"""Scoring one closed conversation against the rubric: pure, so the worker, an appeal and the
nightly rollup all get the same number from the same summary.

Findings are identified by a stable ``finding_id`` (conversation, message, label, span), so an
appeal can name one, and an accepted appeal removes exactly that finding from the score.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors import RuleBook, load_ruleset
from detectors.rubric import Rubric, Section, rubric_of
from detectors.timing_policy import TimingPolicy, seconds_points, share_points

CONVERSATION_LABELS = ("missing_greeting", "missing_closing", "politeness_rate", "unanswered_at_end")
SILENT_LABELS = ("missing_greeting", "missing_closing", "politeness_rate")
AGENT_LABELS = ("banned_word", "impolite_address", "forbidden_phrase", "conflict", "deflection", "pii_leak")


def finding_id(conversation_id: str, label: str, message_id: str = "", start: int = 0, end: int = 0) -> str:
    key = f"{conversation_id}\x1f{message_id}\x1f{label}\x1f{start}\x1f{end}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def agent_silent(summary: Mapping[str, Any]) -> bool:
    """The customer asked (at least one turn) and no agent wrote a word: nothing to award greeting,
    closing or politeness for."""
    metrics = summary.get("metrics") or {}
    return bool(metrics.get("turns")) and not (metrics.get("messages") or {}).get("agent")


def never_answered(summary: Mapping[str, Any]) -> bool:
    """The customer asked and no turn was answered: the response-time items score 0, not full marks."""
    metrics = summary.get("metrics") or {}
    return bool(metrics.get("turns")) and not metrics.get("answered_turns")


@dataclass(frozen=True, slots=True)
class Offline:
    """What the 24-hour rule changes in one summary: turns opened while the shop was offline and answered
    within ``offline_reply_s`` are answered in time (no response-time penalty), and an offline turn still
    open at the close is pending (not 漏回复 until its 24 hours are over)."""

    first_in_time: bool = False  # the first turn was offline and answered in time
    in_time: tuple[int, ...] = ()  # indexes into response_times_s of offline answers in time
    pending: bool = False  # closed on an offline question whose 24 hours are not over

    def __bool__(self) -> bool:
        return self.first_in_time or bool(self.in_time) or self.pending


def offline_of(summary: Mapping[str, Any], rubric: Rubric | None) -> Offline:
    """Which turns the 24-hour rule covers: those begun while the shop was offline — outside its shifts, inside
    its offline hours, or marked 留言 by the platform (no agent online: ``offline`` on the customer's message)."""
    metrics = summary.get("metrics") or {}
    marked = {int(t) for t in metrics.get("offline_turn_starts_ms") or [] if isinstance(t, int)}
    if rubric is None or not (rubric.shifts or rubric.offline_hours or marked or metrics.get("first_customer_offline")
                              or metrics.get("waiting_offline")):
        return Offline()
    limit = rubric.offline_reply_s

    def offline(ts: int) -> bool:
        return ts in marked or rubric.offline(ts)

    first_ts, first_s = metrics.get("first_customer_ms"), metrics.get("first_response_s")
    first_in_time = first_ts is not None and first_s is not None and first_s <= limit and (
        bool(metrics.get("first_customer_offline")) or offline(int(first_ts)))
    starts = metrics.get("response_starts_ms")  # when each answered turn began (parallel to response_times_s)
    times = metrics.get("response_times_s") or []
    in_time: tuple[int, ...] = ()
    if isinstance(starts, list) and len(starts) == len(times):
        in_time = tuple(i for i, (start, seconds) in enumerate(zip(starts, times, strict=True))
                        if start is not None and seconds is not None and offline(int(start)) and seconds <= limit)
    elif first_in_time and times:
        in_time = (0,)  # without the starts only the first turn's is known
    waiting = metrics.get("waiting_since_ms")
    pending = False
    if waiting is not None and summary.get("offline_expired_ms") is None:  # its 24 hours ran out: 回复中断
        closed = int(summary.get("closed_ms") or waiting)
        pending = (bool(metrics.get("waiting_offline")) or offline(int(waiting))) and \
            closed - int(waiting) <= limit * 1000
    return Offline(first_in_time, in_time, pending)


def offline_deadline_ms(summary: Mapping[str, Any], rubric: Rubric | None) -> int | None:
    """When a closed conversation's pending offline question stops being pending (its 24 hours are over): then it
    is 回复中断 like any unanswered question. None when nothing is pending."""
    if not offline_of(summary, rubric).pending or rubric is None:
        return None
    return int((summary.get("metrics") or {})["waiting_since_ms"]) + rubric.offline_reply_s * 1000


def expire_offline(summary: Mapping[str, Any], at_ms: int) -> dict[str, Any]:
    """The summary with its pending offline question over its 24 hours (scored as unanswered from now on)."""
    return {**summary, "offline_expired_ms": int(at_ms)}


def findings_of(summary: Mapping[str, Any], rubric: Rubric | None = None) -> list[dict[str, Any]]:
    """The conversation-level findings of a closing summary (开头语, 结束语, 礼貌用语, 回复中断). Findings
    on single messages reach SQL with the transcript, not through the summary. With the ``rubric``, an offline
    question still inside its 24 hours at the close is not 回复中断 (nor is its silence the agent's)."""
    conv = summary["conversation_id"]
    pending = offline_of(summary, rubric).pending
    found = []
    checks = summary.get("checks") or {}
    for check in checks.get("findings") or []:
        found.append({"finding_id": finding_id(conv, check["label"]), "label": check["label"], "message_id": None,
                      "start": 0, "end": 0, "ts_ms": summary.get("closed_ms"), "agent_id": summary.get("agent_id"),
                      "matched": "", "detail": check.get("detail")})
    metrics = summary.get("metrics") or {}
    if agent_silent(summary) and not pending:  # the assigned agent said nothing: no greeting, closing, politeness
        for label in SILENT_LABELS:
            if not any(f["label"] == label for f in found):
                found.append({"finding_id": finding_id(conv, label), "label": label, "message_id": None,
                              "start": 0, "end": 0, "ts_ms": summary.get("closed_ms"),
                              "agent_id": summary.get("agent_id"), "matched": "",
                              "detail": {"reason": "no_agent_message", "customer_turns": metrics.get("turns", 0)}})
    if metrics.get("waiting_since_ms") is not None and not pending:  # 回复中断: closed on an unanswered question
        found.append({"finding_id": finding_id(conv, "unanswered_at_end"), "label": "unanswered_at_end",
                      "message_id": None, "start": 0, "end": 0, "ts_ms": summary.get("closed_ms"),
                      "agent_id": summary.get("agent_id"), "matched": ""})
    return found


def active_labels(summary: Mapping[str, Any], dismissed: Mapping[str, int] | None = None,
                  rubric: Rubric | None = None) -> Counter[str]:
    """Counted findings per label: the agent's message findings (``labels``), the conversation-level
    ones, less those dismissed by accepted appeals."""
    active: Counter[str] = Counter({label: int(n) for label, n in (summary.get("labels") or {}).items()
                                    if label in AGENT_LABELS})
    active.update(f["label"] for f in findings_of(summary, rubric))
    for label, count in (dismissed or {}).items():
        active[label] = max(0, active[label] - count)
    return +active


@dataclass(slots=True)
class Score:
    score: float
    max_score: int
    fatal: bool
    fatal_labels: list[str] = field(default_factory=list)
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    bonus: int = 0
    offline_pending: bool = False  # closed on an offline question still inside its 24 hours
    pending_items: list[str] = field(default_factory=list)  # human items no reviewer has scored yet

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "max_score": self.max_score, "fatal": self.fatal,
                "fatal_labels": self.fatal_labels, "bonus": self.bonus, "breakdown": self.breakdown,
                "offline_pending": self.offline_pending, "pending_items": self.pending_items}


def _item_points(item: str, maximum: int, summary: Mapping[str, Any], active: Counter[str], offline: Offline,
                 timing: TimingPolicy, restored: Collection[str] = ()) -> float:
    if item in restored:
        return float(maximum)  # an accepted appeal on the item (e.g. the response time was the system's fault)
    metrics = summary.get("metrics") or {}
    checks = summary.get("checks") or {}
    if item == "greeting":
        return 0 if active["missing_greeting"] else maximum
    if item == "closing":
        return 0 if active["missing_closing"] else maximum
    if item == "politeness":
        points = checks.get("politeness_points")
        if not active["politeness_rate"]:
            return maximum  # full marks, or nothing to judge, or the finding was appealed away
        return 0.0 if points is None else float(min(maximum, points))  # None: the agent said nothing
    if item == "first_response" and offline.first_in_time:
        return float(maximum)  # 24-hour rule: an offline question answered within the day is in time
    if item == "avg_response" and offline.in_time:
        times = metrics.get("response_times_s") or []
        exempt = [float(times[i]) for i in offline.in_time if i < len(times) and times[i] is not None]
        count, mean = metrics.get("responses"), metrics.get("avg_response_s")
        tiers = timing.after_sales_avg_response_tiers if metrics.get("after_sales") else timing.avg_response_tiers
        if isinstance(count, int) and mean is not None and count >= len(exempt):
            # every answer counts, beyond the listed ones too: the total less the offline answers in time
            rest_count, rest_sum = count - len(exempt), float(mean) * count - sum(exempt)
            if rest_count <= 0:
                return float(maximum)
            return float(min(maximum, seconds_points(round(max(0.0, rest_sum) / rest_count, 3), tiers)))
        rest = [t for i, t in enumerate(times) if i not in offline.in_time and t is not None]
        if not rest:
            return float(maximum)
        return float(min(maximum, seconds_points(sum(rest) / len(rest), tiers)))
    if item == "reply_rate" and offline.pending:
        turns = int(metrics.get("turns") or 0) - 1  # the offline question still inside its 24 hours
        if turns <= 0:
            return float(maximum)
        return float(min(maximum, share_points(int(metrics.get("answered_turns") or 0) / turns,
                                               timing.reply_rate_tiers)))
    key = {"first_response": "first_response_points", "avg_response": "avg_response_points",
           "reply_rate": "reply_rate_points"}[item]
    points = metrics.get(key)
    if points is None:  # no response time: nothing to answer — or nobody answered, which earns nothing
        unanswered = item != "reply_rate" and never_answered(summary) and not offline.pending
        return 0.0 if unanswered else float(maximum)
    return float(min(maximum, points))


def _section(section: Section, summary: Mapping[str, Any], active: Counter[str], offline: Offline,
             timing: TimingPolicy, human: Mapping[str, float], restored: Collection[str]) -> dict[str, Any]:
    items = {item: _item_points(item, maximum, summary, active, offline, timing, restored)
             for item, maximum in section.items.items()}
    scored = {item: float(max(0.0, min(maximum, human[item]))) for item, maximum in section.human_items.items()
              if human.get(item) is not None}
    pending = [item for item in section.human_items if item not in scored]  # 0 until a reviewer scores them
    items.update({item: scored.get(item, 0.0) for item in section.human_items})
    base = sum(items.values()) + (section.points - sum(section.items.values()) - sum(section.human_items.values()))
    deductions: list[dict[str, Any]] = [{"label": label, "count": active[label], "points": -per * active[label]}
                                        for label, per in section.deductions.items() if active[label]]
    points = max(0.0, base + sum(int(d["points"]) for d in deductions))
    return {"section": section.name, "points": round(points, 2), "max": section.points, "items": items,
            "deductions": deductions, "pending": pending,
            "item_max": {**section.items, **section.human_items}}


def score_summary(summary: Mapping[str, Any], rubric: Rubric, *, dismissed: Mapping[str, int] | None = None,
                  bonus: int = 0, extra: Mapping[str, int] | None = None,
                  human: Mapping[str, float] | None = None, restored: Collection[str] = ()) -> Score:
    """The conversation's score. ``dismissed``: findings per label removed by accepted appeals or rejected in
    review; ``extra``: findings per label a reviewer added (manual, or a held-back model finding confirmed);
    ``human``: the points a reviewer gave the rubric's human items (an item not there is pending: 0);
    ``restored``: automatic items (first_response, …) given full marks by an accepted appeal."""
    active = active_labels(summary, rubric=rubric)
    active.update({label: int(n) for label, n in (extra or {}).items()})
    for label, count in (dismissed or {}).items():
        active[label] = max(0, active[label] - count)
    active = +active
    offline = offline_of(summary, rubric)
    timing = rubric.timing or TimingPolicy()
    breakdown = [_section(section, summary, active, offline, timing, human or {}, restored)
                 for section in rubric.sections]
    pending = [item for s in breakdown for item in s["pending"]]
    fatal_labels = sorted(label for label in rubric.fatal_labels if active[label])
    bonus = max(0, min(bonus, rubric.bonus_max))
    if fatal_labels:
        return Score(0.0, rubric.max_score, True, fatal_labels, breakdown, bonus, offline.pending, pending)
    ceiling = rubric.max_score + (bonus if rubric.bonus_above_max else 0)  # 亮点 as an 附加项, or within 100
    total = min(ceiling, sum(s["points"] for s in breakdown) + bonus)
    return Score(round(total, 2), rubric.max_score, False, [], breakdown, bonus, offline.pending, pending)


def rubric_lookup(book: RuleBook) -> Callable[[str], Rubric]:
    """shop_id → that shop's rubric under the rules in force (the seed's if the document has none)."""
    made: dict[str, tuple[Any, Rubric]] = {}  # shop → (its detector, its rubric): rebuilt when the rules change

    def lookup(shop_id: str) -> Rubric:
        detector = book.detector(shop_id)
        known = made.get(shop_id)
        if known is not None and known[0] is detector:
            return known[1]
        raw = detector.ruleset.rubric or load_ruleset().rubric
        rubric = dataclasses.replace(rubric_of(raw), timing=detector.timing)
        if len(made) > 4096:
            made.clear()
        made[shop_id] = (detector, rubric)
        return rubric
    return lookup
