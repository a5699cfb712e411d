"""Precision and recall per label on labelled data, and a false-positive scan of real chats.

Pure functions over lists, so ``zhijian eval``, the tests and the benchmark share them.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.conversation import check_conversation
from detectors.engine import RuleBook
from detectors.ruleset import LABELS, labels_of

DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data"


@dataclass(slots=True)
class LabelScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    support: int = 0
    false_positives: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def score(expected: Sequence[Iterable[str]], predicted: Sequence[Iterable[str]],
          texts: Sequence[str]) -> dict[str, LabelScore]:
    scores = {label: LabelScore() for label in LABELS}
    for want, got, text in zip(expected, predicted, texts, strict=True):
        want_set, got_set = set(want), set(got)
        for label in want_set:
            scores[label].support += 1
        for label in want_set & got_set:
            scores[label].tp += 1
        for label in got_set - want_set:
            scores[label].fp += 1
            scores[label].false_positives.append(text)
        for label in want_set - got_set:
            scores[label].fn += 1
            scores[label].misses.append(text)
    return scores


def evaluate_utterances(samples: Sequence[dict[str, Any]], book: RuleBook) -> dict[str, LabelScore]:
    predicted = [labels_of(book.detect(s["text"], s["sender"], s.get("shop_id"))) for s in samples]
    return score([s["labels"] for s in samples], predicted, [s["text"] for s in samples])


def evaluate_conversations(samples: Sequence[dict[str, Any]], book: RuleBook) -> dict[str, LabelScore]:
    predicted = [check_conversation(s["agent_messages"], book.ruleset).labels for s in samples]
    return score([s["labels"] for s in samples], predicted, [" / ".join(s["agent_messages"]) for s in samples])


def format_scores(scores: dict[str, LabelScore], title: str) -> str:
    lines = [title, f"{'label':18} {'support':>7} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}"]
    for label, s in scores.items():
        if s.support or s.fp:
            lines.append(f"{label:18} {s.support:7d} {s.tp:4d} {s.fp:4d} {s.fn:4d} {s.precision:9.3f} {s.recall:7.3f}")
    for label, s in scores.items():
        for text in s.false_positives:
            lines.append(f"  false positive {label}: {text}")
        for text in s.misses:
            lines.append(f"  missed {label}: {text}")
    return "\n".join(lines)


@dataclass(slots=True)
class CorpusReport:
    agent_messages: int = 0
    customer_messages: int = 0
    conversations: int = 0
    findings: Counter[str] = field(default_factory=Counter)  # label → messages with a finding
    critical: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)  # after the per-conversation throttle
    samples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def per_thousand(self, count: int, sender: str = "agent") -> float:
        total = self.agent_messages if sender == "agent" else self.customer_messages
        return 1000 * count / total if total else 0.0


def scan_corpus(rows: Sequence[tuple[str, str, str]], book: RuleBook, *, sample_size: int = 12,
                seed: int = 7) -> CorpusReport:
    """Run the detectors over (conversation, sender, text) rows of real chats.

    Counts messages per label, critical ones, and live alerts after the rule's throttle
    (treating each conversation's messages as one minute apart, since the corpus has no times).
    """
    report = CorpusReport()
    hits: dict[str, list[tuple[str, str]]] = {}
    last_alert: dict[tuple[str, str], int] = {}
    position: Counter[str] = Counter()
    conversations = set()
    for conversation, sender, text in rows:
        conversations.add(conversation)
        position[conversation] += 1
        if sender == "agent":
            report.agent_messages += 1
        else:
            report.customer_messages += 1
        findings = book.detect(text, sender)
        for label in labels_of(findings):
            report.findings[label] += 1
            first = next(f for f in findings if f.label == label)
            if first.severity == "critical":
                report.critical[label] += 1
            hits.setdefault(label, []).append((first.matched, text))
        for finding in findings:
            rule = book.ruleset.rule(finding.rule_id)
            if not finding.alert or rule is None:
                continue
            key = (conversation, finding.rule_id)
            minute = position[conversation]
            if key in last_alert and (minute - last_alert[key]) * 60 < rule.throttle_s:
                continue
            last_alert[key] = minute
            report.alerts[finding.label] += 1
    report.conversations = len(conversations)
    rng = random.Random(seed)
    report.samples = {label: rng.sample(found, min(sample_size, len(found))) for label, found in hits.items()}
    return report


def format_corpus_report(report: CorpusReport, source: str) -> str:
    lines = [
        f"false-positive scan: {source}",
        f"{report.conversations} conversations, {report.agent_messages} agent and "
        f"{report.customer_messages} customer messages",
        f"{'label':18} {'messages':>8} {'per 1k':>7} {'critical/1k':>11} {'alerts':>6} {'alerts/1k':>9}",
    ]
    for label in LABELS:
        count = report.findings.get(label, 0)
        if not count:
            continue
        sender = "customer" if label == "customer_anger" else "agent"
        lines.append(
            f"{label:18} {count:8d} {report.per_thousand(count, sender):7.1f} "
            f"{report.per_thousand(report.critical.get(label, 0), sender):11.1f} "
            f"{report.alerts.get(label, 0):6d} {report.per_thousand(report.alerts.get(label, 0), sender):9.1f}"
        )
    total_critical = sum(report.critical.values())
    lines.append(f"critical findings per 1,000 agent messages: {report.per_thousand(total_critical):.1f}")
    for label, found in report.samples.items():
        lines.append(f"sample of {label}:")
        lines.extend(f"  [{matched}] {text[:90]}" for matched, text in found)
    return "\n".join(lines)
