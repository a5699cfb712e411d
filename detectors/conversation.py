"""Conversation-level checks, run when a conversation closes: 开头语, 结束语, 礼貌用语使用率."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.normalise import Normaliser
from detectors.ruleset import PhraseCheck, RuleSet


@dataclass(frozen=True, slots=True)
class ConversationFinding:
    label: str
    rule_id: str
    severity: str
    alert: bool
    ruleset: str
    detail: dict[str, Any] = field(default_factory=dict)
    fatal: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "rule_id": self.rule_id, "severity": self.severity, "fatal": self.fatal,
                "alert": self.alert, "ruleset": self.ruleset, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ConversationReport:
    greeting: bool | None  # None: the agent never wrote, nothing to judge
    closing: bool | None
    politeness_rate: float | None
    politeness_points: int | None
    findings: tuple[ConversationFinding, ...]

    @property
    def labels(self) -> list[str]:
        return [finding.label for finding in self.findings]


def politeness_points(rate: float, check: PhraseCheck) -> int:
    for minimum, points in check.tiers:
        if rate >= minimum - 1e-9:
            return points
    return 0


def _has_phrase(text: str, check: PhraseCheck, normalise: Normaliser) -> bool:
    # phrases go through the same normalisation as the text (谢谢 is 谢 after collapsing repeats)
    for word in check.exceptions:
        text = text.replace(normalise(word).text, "")
    return any(normalise(phrase).text in text for phrase in check.phrases)


def check_conversation(agent_messages: Sequence[str], ruleset: RuleSet,
                       normalise: Normaliser | None = None) -> ConversationReport:
    """Judge the agent's messages of one conversation, oldest first."""
    if not agent_messages:
        return ConversationReport(None, None, None, None, ())
    normalise = normalise or Normaliser(ruleset.variants)
    rules = ruleset.conversation
    texts = [normalise(message).text for message in agent_messages]
    greeting = any(_has_phrase(t, rules.greeting, normalise) for t in texts[: max(rules.greeting.window, 1)])
    closing = any(_has_phrase(t, rules.closing, normalise) for t in texts[-max(rules.closing.window, 1):])
    polite = sum(1 for t in texts if _has_phrase(t, rules.politeness, normalise))
    rate = polite / len(texts)
    points = politeness_points(rate, rules.politeness)
    best = rules.politeness.tiers[0][1] if rules.politeness.tiers else 0
    findings = []
    version = ruleset.version
    if not greeting:
        findings.append(ConversationFinding(rules.greeting.label, "conversation.greeting", rules.greeting.severity,
                                            rules.greeting.alert, version, {"first_message": agent_messages[0]}))
    if not closing:
        findings.append(ConversationFinding(rules.closing.label, "conversation.closing", rules.closing.severity,
                                            rules.closing.alert, version, {"last_message": agent_messages[-1]}))
    if points < best:
        findings.append(ConversationFinding(
            rules.politeness.label, "conversation.politeness", rules.politeness.severity, rules.politeness.alert,
            version, {"rate": round(rate, 4), "points": points, "polite_messages": polite,
                      "agent_messages": len(texts)},
        ))
    return ConversationReport(greeting, closing, round(rate, 4), points, tuple(findings))
