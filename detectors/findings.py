"""The finding: what a detector reports about one message."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule hit. ``start``/``end`` are offsets into the original text (end exclusive).

    ``alert`` says whether the rule raises a live alert or only counts toward the score;
    ``ruleset`` is the version of the rule set the finding was made with. ``source`` is "rule"
    or "model" (the learned second opinion, detectors/model.py); a model finding carries its
    ``score`` (probability) and ``evidence`` (the n-grams that weighed most) and spans the whole
    message. ``review_only``: a model finding between the review and alert thresholds, for the QA
    review queue only: it neither raises an alert nor counts toward the score.
    """

    label: str
    rule_id: str
    start: int
    end: int
    matched: str
    severity: str
    fatal: bool
    alert: bool = True
    ruleset: str = ""
    source: str = "rule"
    score: float | None = None
    evidence: tuple[str, ...] = ()
    review_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
