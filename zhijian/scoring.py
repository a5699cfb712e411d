"""Scoring one closed conversation against the rubric: pure, so the worker, an appeal and the
nightly rollup all get the same number from the same summary.

Findings are identified by a stable ``finding_id`` (conversation, message, label, span), so an
appeal can name one, and an accepted appeal removes exactly that finding from the score.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors import RuleBook, load_ruleset
from detectors.rubric import Rubric, Section, rubric_of

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


def findings_of(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation-level findings of a closing summary (开头语, 结束语, 礼貌用语, 回复中断). Findings
    on single messages reach SQL with the transcript, not through the summary."""
    conv = summary["conversation_id"]
    found = []
    checks = summary.get("checks") or {}
    for check in checks.get("findings") or []:
        found.append({"finding_id": finding_id(conv, check["label"]), "label": check["label"], "message_id": None,
                      "start": 0, "end": 0, "ts_ms": summary.get("closed_ms"), "agent_id": summary.get("agent_id"),
                      "matched": "", "detail": check.get("detail")})
    metrics = summary.get("metrics") or {}
    if agent_silent(summary):  # the assigned agent said nothing: greeting, closing, politeness are not earned
        for label in SILENT_LABELS:
            if not any(f["label"] == label for f in found):
                found.append({"finding_id": finding_id(conv, label), "label": label, "message_id": None,
                              "start": 0, "end": 0, "ts_ms": summary.get("closed_ms"),
                              "agent_id": summary.get("agent_id"), "matched": "",
                              "detail": {"reason": "no_agent_message", "customer_turns": metrics.get("turns", 0)}})
    if metrics.get("waiting_since_ms") is not None:  # 回复中断: closed on an unanswered question
        found.append({"finding_id": finding_id(conv, "unanswered_at_end"), "label": "unanswered_at_end",
                      "message_id": None, "start": 0, "end": 0, "ts_ms": summary.get("closed_ms"),
                      "agent_id": summary.get("agent_id"), "matched": ""})
    return found


def active_labels(summary: Mapping[str, Any], dismissed: Mapping[str, int] | None = None) -> Counter[str]:
    """Counted findings per label: the agent's message findings (``labels``), the conversation-level
    ones, less those dismissed by accepted appeals."""
    active: Counter[str] = Counter({label: int(n) for label, n in (summary.get("labels") or {}).items()
                                    if label in AGENT_LABELS})
    active.update(f["label"] for f in findings_of(summary))
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

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "max_score": self.max_score, "fatal": self.fatal,
                "fatal_labels": self.fatal_labels, "bonus": self.bonus, "breakdown": self.breakdown}


def _item_points(item: str, maximum: int, summary: Mapping[str, Any], active: Counter[str]) -> float:
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
    key = {"first_response": "first_response_points", "avg_response": "avg_response_points",
           "reply_rate": "reply_rate_points"}[item]
    points = metrics.get(key)
    if points is None:  # no response time: nothing to answer — or nobody answered, which earns nothing
        return 0.0 if item != "reply_rate" and never_answered(summary) else float(maximum)
    return float(min(maximum, points))


def _section(section: Section, summary: Mapping[str, Any], active: Counter[str]) -> dict[str, Any]:
    items = {item: _item_points(item, maximum, summary, active) for item, maximum in section.items.items()}
    base = sum(items.values()) + (section.points - sum(section.items.values()))
    deductions: list[dict[str, Any]] = [{"label": label, "count": active[label], "points": -per * active[label]}
                                        for label, per in section.deductions.items() if active[label]]
    points = max(0.0, base + sum(int(d["points"]) for d in deductions))
    return {"section": section.name, "points": round(points, 2), "max": section.points, "items": items,
            "deductions": deductions}


def score_summary(summary: Mapping[str, Any], rubric: Rubric, *, dismissed: Mapping[str, int] | None = None,
                  bonus: int = 0) -> Score:
    """The conversation's score. ``dismissed``: findings per label removed by accepted appeals."""
    active = active_labels(summary, dismissed)
    breakdown = [_section(section, summary, active) for section in rubric.sections]
    fatal_labels = sorted(label for label in rubric.fatal_labels if active[label])
    bonus = max(0, min(bonus, rubric.bonus_max))
    if fatal_labels:
        return Score(0.0, rubric.max_score, True, fatal_labels, breakdown, bonus)
    total = min(rubric.max_score, sum(s["points"] for s in breakdown) + bonus)
    return Score(round(total, 2), rubric.max_score, False, [], breakdown, bonus)


def rubric_lookup(book: RuleBook) -> Callable[[str], Rubric]:
    """shop_id → that shop's rubric under the rules in force (the seed's if the document has none)."""
    def lookup(shop_id: str) -> Rubric:
        raw = book.detector(shop_id).ruleset.rubric
        return rubric_of(raw or load_ruleset().rubric)
    return lookup
