"""The finding: what a detector reports about one message."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule hit. ``start``/``end`` are offsets into the original text (end exclusive)."""

    label: str
    rule_id: str
    start: int
    end: int
    matched: str
    severity: str
    fatal: bool
