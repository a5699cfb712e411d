"""Pure text analysis for the 质检 rubric: text in, findings out.

Nothing here imports Kafka, Faust or FastAPI, so the same functions run in the
worker, on the command line and in tests.
"""

from detectors.findings import Finding
from detectors.modal_particles import detect_modal_particles
from detectors.registry import detect_agent_message

__all__ = ["Finding", "detect_agent_message", "detect_modal_particles"]
