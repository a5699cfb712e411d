"""Which detectors run on which message."""

from __future__ import annotations

from detectors.findings import Finding
from detectors.modal_particles import detect_modal_particles


def detect_agent_message(text: str) -> list[Finding]:
    """All findings for one message written by a human agent, in text order."""
    if not text:
        return []
    findings = detect_modal_particles(text)
    findings.sort(key=lambda f: (f.start, f.end))
    return findings
