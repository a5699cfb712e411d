"""Precision and recall per label on labelled data, and a false-positive scan of real chats.

Pure functions over lists, so ``zhijian eval``, the tests and the benchmark share them.

The in-domain sets (``detectors/data/indomain``): ``<label>.test.jsonl`` are FROZEN splits, never
used for training or for choosing a threshold; each is scored for its own label only (the
rows' other labels are not exhaustively annotated). ``evasions.jsonl`` are hostile messages
written to dodge word lists (caught: every label but impolite_address found, since pinyin ni
carries no 你); ``lookalikes.jsonl`` are harmless messages that resemble violations (an alarm:
any finding of a label the row does not carry).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.conversation import check_conversation
from detectors.engine import Detector, RuleBook
from detectors.findings import Finding
from detectors.ruleset import LABELS, labels_of

DATA_DIR = Path(__file__).resolve().parent / "data"  # the labelled sets, shipped with the detectors
INDOMAIN_DIR = DATA_DIR / "indomain"
SPLITS = {"conflict": "conflict", "deflection": "deflection", "customer_anger": "customer_anger", "pii": "pii_leak"}


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


def jddc_digest(text: str) -> str:
    """How ``jddc_reviewed.jsonl`` names a JDDC message without holding its text."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def read_reviewed(folder: Path, label: str) -> dict[str, str]:
    """digest → verdict (``positive`` or ``unsure``) for the JDDC messages a reviewer judged for ``label``;
    a message not listed stays a negative."""
    path = folder / "jddc_reviewed.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["digest"]: row["verdict"] for row in rows if row["label"] == label}


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


@dataclass(slots=True)
class SplitScore:
    label: str
    rows: int
    rules: LabelScore
    model: LabelScore | None  # None: no model for this label
    combined: LabelScore
    queued: LabelScore | None = None  # what reaches anyone: alerts plus the model's review-only findings


def _tally(score: LabelScore, want: bool, got: bool, text: str) -> None:
    score.support += int(want)
    if want and got:
        score.tp += 1
    elif got:
        score.fp += 1
        score.false_positives.append(text)
    elif want:
        score.fn += 1
        score.misses.append(text)


def evaluate_split(rows: Sequence[dict[str, Any]], label: str, detector: Detector) -> SplitScore:
    """Rules alone, the model alone (score ≥ its alert threshold) and both as shipped, for ``label``."""
    setting = detector.model_setting(label)
    result = SplitScore(label, len(rows), LabelScore(), LabelScore() if setting else None, LabelScore(),
                        LabelScore() if setting else None)
    for row in rows:
        want = label in row["labels"]
        findings = detector.detect(row["text"], row["sender"])
        rules = any(f.label == label and f.source == "rule" for f in findings)
        _tally(result.rules, want, rules, row["text"])
        _tally(result.combined, want, label in labels_of(findings), row["text"])
        if setting is not None and result.model is not None and result.queued is not None:
            scores = {o.label: o.score for o in detector.opinions(row["text"], row["sender"])}
            _tally(result.model, want, scores.get(label, 0.0) >= setting.alert, row["text"])
            queued = label in labels_of(detector.detect(row["text"], row["sender"], review=True))
            _tally(result.queued, want, queued, row["text"])
    return result


def read_split(label_file: str, split: str = "test", folder: Path = INDOMAIN_DIR) -> list[dict[str, Any]]:
    path = folder / f"{label_file}.{split}.jsonl"
    return read_jsonl(path) if path.exists() else []


def format_splits(results: Sequence[SplitScore], title: str) -> str:
    lines = [title, f"{'label':15} {'rows':>5} {'pos':>4}  {'rules P':>7} {'R':>5}  {'model P':>7} {'R':>5}"
                    f"  {'combined P':>10} {'R':>5}  {'+review P':>9} {'R':>5}"]
    for r in results:
        model = f"{r.model.precision:7.3f} {r.model.recall:5.3f}" if r.model else f"{'–':>7} {'–':>5}"
        queued = f"{r.queued.precision:9.3f} {r.queued.recall:5.3f}" if r.queued else f"{'–':>9} {'–':>5}"
        lines.append(f"{r.label:15} {r.rows:5d} {r.combined.support:4d}  {r.rules.precision:7.3f} "
                     f"{r.rules.recall:5.3f}  {model}  {r.combined.precision:10.3f} {r.combined.recall:5.3f}  {queued}")
    return "\n".join(lines)


@dataclass(slots=True)
class SuiteResult:
    total: int = 0
    passed: int = 0
    failures: list[tuple[str, list[str], list[str]]] = field(default_factory=list)  # text, wanted, got

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 1.0


def evaluate_evasions(rows: Sequence[dict[str, Any]], detector: Detector) -> SuiteResult:
    """Caught: every label of the row but impolite_address is found (rules or model alert)."""
    result = SuiteResult()
    for row in rows:
        want = set(row["labels"]) - {"impolite_address"}
        got = labels_of(detector.detect(row["text"], row["sender"]))
        result.total += 1
        if want <= set(got):
            result.passed += 1
        else:
            result.failures.append((row["text"], sorted(want), got))
    return result


def evaluate_lookalikes(rows: Sequence[dict[str, Any]], detector: Detector) -> SuiteResult:
    """Passed: no finding of a label the row does not carry (no alarm)."""
    result = SuiteResult()
    for row in rows:
        got = labels_of(detector.detect(row["text"], row["sender"]))
        extra = [label for label in got if label not in row["labels"]]
        result.total += 1
        if extra:
            result.failures.append((row["text"], list(row["labels"]), got))
        else:
            result.passed += 1
    return result


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
    review: Counter[str] = field(default_factory=Counter)  # model review-only findings (QA queue, no alert)
    samples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    critical_rows: list[tuple[str, str, str]] = field(default_factory=list)  # sender, rule_id [matched], text
    model_rows: list[tuple[str, str, str]] = field(default_factory=list)  # model alerts: sender, label, text
    confirmed: Counter[str] = field(default_factory=Counter)  # label → flagged messages a reviewer marked as it

    def per_thousand(self, count: int, sender: str = "agent") -> float:
        total = self.agent_messages if sender == "agent" else self.customer_messages
        return 1000 * count / total if total else 0.0


def scan_corpus(rows: Sequence[tuple[str, str, str]], book: RuleBook, *, sample_size: int = 12,
                seed: int = 7, shop_id: str | None = None,
                reviewed: Mapping[str, Mapping[str, str]] | None = None) -> CorpusReport:
    """Run the detectors over (conversation, sender, text) rows of real chats.

    Counts messages per label, critical ones, and live alerts after the rule's throttle
    (treating each conversation's messages as one minute apart, since the corpus has no times).
    ``reviewed`` (label → ``read_reviewed``) names the messages a reviewer marked as carrying a label:
    flagged ones are counted apart, since they are no false alarm.
    """
    reviewed = reviewed or {}
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
        everything = book.detect(text, sender, shop_id, review=True)
        findings: list[Finding] = []
        for finding in everything:
            if finding.review_only:
                report.review[finding.label] += 1
            else:
                findings.append(finding)
        for finding in findings:
            if finding.severity == "critical":
                report.critical_rows.append((sender, f"{finding.rule_id} [{finding.matched[:20]}]", text))
            if finding.source == "model":
                marked = reviewed.get(finding.label, {}).get(jddc_digest(text)) == "positive"
                report.model_rows.append((sender, f"{finding.label} {finding.score}"
                                                  f"{' (marked so by a reviewer)' if marked else ''}", text))
        for label in labels_of(findings):
            report.findings[label] += 1
            if reviewed.get(label) and reviewed[label].get(jddc_digest(text)) == "positive":
                report.confirmed[label] += 1
            first = next(f for f in findings if f.label == label)
            if first.severity == "critical":
                report.critical[label] += 1
            hits.setdefault(label, []).append((first.matched, text))
        for finding in findings:
            rule = book.detector(shop_id).ruleset.rule(finding.rule_id)
            if not finding.alert:
                continue
            key = (conversation, finding.rule_id)
            minute = position[conversation]
            throttle_s = rule.throttle_s if rule is not None else 0
            if key in last_alert and (minute - last_alert[key]) * 60 < throttle_s:
                continue
            last_alert[key] = minute
            report.alerts[finding.label] += 1
    report.conversations = len(conversations)
    rng = random.Random(seed)
    report.samples = {label: rng.sample(found, min(sample_size, len(found))) for label, found in hits.items()}
    return report


def format_corpus_report(report: CorpusReport, source: str, *, list_all: bool = True) -> str:
    lines = [
        f"false-positive scan: {source}",
        f"{report.conversations} conversations, {report.agent_messages} agent and "
        f"{report.customer_messages} customer messages",
        f"{'label':18} {'messages':>8} {'per 1k':>7} {'critical/1k':>11} {'alerts':>6} {'alerts/1k':>9} "
        f"{'review-only/1k':>14}",
    ]
    for label in LABELS:
        count = report.findings.get(label, 0)
        if not count and not report.review.get(label, 0):
            continue
        sender = "customer" if label == "customer_anger" else "agent"
        lines.append(
            f"{label:18} {count:8d} {report.per_thousand(count, sender):7.1f} "
            f"{report.per_thousand(report.critical.get(label, 0), sender):11.1f} "
            f"{report.alerts.get(label, 0):6d} {report.per_thousand(report.alerts.get(label, 0), sender):9.1f} "
            f"{report.per_thousand(report.review.get(label, 0), sender):14.1f}"
        )
    for label, count in report.confirmed.items():
        lines.append(f"{label}: {count} of the {report.findings[label]} flagged messages were marked {label} by a "
                     "reviewer (indomain/jddc_reviewed.jsonl), so not false alarms")
    total_critical = sum(report.critical.values())
    lines.append(f"critical findings per 1,000 agent messages: {report.per_thousand(total_critical):.2f} "
                 f"({total_critical} messages)")
    if list_all:
        lines.append(f"every critical finding ({len(report.critical_rows)}), for reading:")
        lines.extend(f"  {sender:8} {rule}  {text[:100]}" for sender, rule, text in report.critical_rows)
        lines.append(f"every model alert ({len(report.model_rows)}), for reading:")
        lines.extend(f"  {sender:8} {label}  {text[:100]}" for sender, label, text in report.model_rows)
    for label, found in report.samples.items():
        lines.append(f"sample of {label}:")
        lines.extend(f"  [{matched}] {text[:90]}" for matched, text in found)
    return "\n".join(lines)
