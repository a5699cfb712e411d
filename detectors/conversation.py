"""Conversation-level checks, run when a conversation closes: 开头语, 结束语, 礼貌用语使用率."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
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


@lru_cache(maxsize=256)
def _normalised(check: PhraseCheck, normalise: Normaliser) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """The check's exception words and phrases, normalised like the text and compiled into one pattern each."""
    def pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
        texts = sorted({normalise(word).text for word in words} - {""}, key=len, reverse=True)
        return re.compile("|".join(map(re.escape, texts))) if texts else None
    return pattern(check.exceptions), pattern(check.phrases)


def _has_phrase(text: str, check: PhraseCheck, normalise: Normaliser) -> bool:
    # phrases go through the same normalisation as the text (谢谢 is 谢 after collapsing repeats)
    exceptions, phrases = _normalised(check, normalise)
    if phrases is None:
        return False
    if exceptions is not None:
        text = exceptions.sub("", text)
    return phrases.search(text) is not None


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


def message_phrases(text: str, ruleset: RuleSet, normalise: Normaliser) -> tuple[bool, bool, bool]:
    """(greeting, closing, polite) for one agent message: the conversation checks folded in one message
    at a time, so a live conversation needs no transcript to be judged at its close."""
    rules = ruleset.conversation
    norm = normalise(text).text
    return (_has_phrase(norm, rules.greeting, normalise), _has_phrase(norm, rules.closing, normalise),
            _has_phrase(norm, rules.politeness, normalise))


def report_from_flags(first: Sequence[int], last: Sequence[int], polite: int, messages: int, ruleset: RuleSet, *,
                      greeting_bit: int, closing_bit: int, detail: dict[str, Any] | None = None) -> ConversationReport:
    """The conversation report from per-message flags: ``first``/``last`` are the flags of the agent's
    first and last messages in event-time order (as many as the windows need)."""
    if not messages:
        return ConversationReport(None, None, None, None, ())
    rules = ruleset.conversation
    greeting = any(flags & greeting_bit for flags in first[: max(rules.greeting.window, 1)])
    closing = any(flags & closing_bit for flags in last[-max(rules.closing.window, 1):])
    rate = polite / messages
    points = politeness_points(rate, rules.politeness)
    best = rules.politeness.tiers[0][1] if rules.politeness.tiers else 0
    findings = []
    version = ruleset.version
    detail = detail or {}
    if not greeting:
        findings.append(ConversationFinding(rules.greeting.label, "conversation.greeting", rules.greeting.severity,
                                            rules.greeting.alert, version,
                                            {"first_message_id": detail.get("first_message_id")}))
    if not closing:
        findings.append(ConversationFinding(rules.closing.label, "conversation.closing", rules.closing.severity,
                                            rules.closing.alert, version,
                                            {"last_message_id": detail.get("last_message_id")}))
    if points < best:
        findings.append(ConversationFinding(
            rules.politeness.label, "conversation.politeness", rules.politeness.severity, rules.politeness.alert,
            version, {"rate": round(rate, 4), "points": points, "polite_messages": polite, "agent_messages": messages},
        ))
    return ConversationReport(greeting, closing, round(rate, 4), points, tuple(findings))
