"""Pure text analysis for the 质检 rubric: text in, findings out.

Nothing here imports Kafka, Faust or FastAPI, so the same functions run in the worker, on
the command line and in tests. The rules are data (``detectors/rulesets/seed.toml`` and
whatever a QA lead publishes later); this package compiles and applies them.
"""

from detectors.conversation import ConversationReport, check_conversation
from detectors.engine import Detector, RuleBook
from detectors.findings import Finding
from detectors.ruleset import LABELS, RuleSet, RuleSetError, load_ruleset, parse_ruleset

__all__ = [
    "LABELS",
    "ConversationReport",
    "Detector",
    "Finding",
    "RuleBook",
    "RuleSet",
    "RuleSetError",
    "check_conversation",
    "load_ruleset",
    "parse_ruleset",
]
