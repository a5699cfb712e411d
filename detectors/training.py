"""Training the learned second opinion (``zhijian train``): data, logistic regression, thresholds.

Data per label (``LABEL_SENDERS``):

* the in-domain TRAIN split ``detectors/data/indomain/<label>.train.jsonl`` (positives and hard
  negatives, and for agent labels also the other agent labels' train rows as negatives unless
  they carry the label). The frozen ``*.test.jsonl`` splits are never read here.
* real JD messages from the JDDC sample as in-domain negatives (agent messages for agent
  labels, customer messages for customer_anger), lighter weight; those a reviewer marked in
  ``indomain/jddc_reviewed.jsonl`` (by a digest of the text, so no JDDC text is in the
  repository) are positives instead, or left out when the reviewer was unsure;
* COLD (offensive / safe social-media comments) for conflict and customer_anger, lightest
  weight: alone it over-fires on chat text, so it only adds general offensive vocabulary.

Features are the distinct character 1–4-grams of the normalised text (the rules' normalisation)
with the inside of quotations and 《》 titles removed (``mask_quotes``: an agent quoting the
customer is not saying those words), seen at least ``min_count`` times. The model is an
L2-regularised logistic regression fitted by mini-batch gradient descent with Adam in numpy,
with a seeded shuffle, so the same data give the same weights. Thresholds
come from out-of-fold scores on the training data only (k folds over the in-domain and JDDC
rows). The model only speaks where the rules found nothing of its label, so a threshold is
judged by the precision of what the model adds there (the rules' own false alarms on the
training negatives are no reason to silence the model): ``alert`` is the lowest threshold at
which those additions have an out-of-fold precision of at least ``alert_precision`` with at most
``max_false_alarms`` per 1,000 JDDC messages, ``review`` the lowest with precision at least
``review_precision`` and at most ``max_review_per_1k`` JDDC messages per 1,000 sent to review.
The look-alike suite (``lookalikes.jsonl``, harmless messages that resemble violations) is a
guard, not training data: ``alert`` is raised above the highest out-of-fold score any
look-alike of the label's sender gets, so the model adds no look-alike alarm. The final model
is then fitted on all training data.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from detectors.evaluation import jddc_digest, read_reviewed
from detectors.model import FORMAT, mask_quotes, ngrams
from detectors.normalise import Normaliser

LABEL_SENDERS = {"conflict": "agent", "deflection": "agent", "customer_anger": "customer"}
ORDERS = (1, 2, 3, 4)
BOUNDS = True  # n-grams touching the start/end of the message (detectors.model.ngrams)
# How much one example of each source weighs in the loss (in-domain examples weigh 1)
SOURCE_WEIGHTS = {"indomain": 1.0, "jddc": 0.5, "cold": 0.005}


@dataclass(frozen=True, slots=True)
class Example:
    text: str  # normalised
    positive: bool
    source: str  # indomain | jddc | cold
    fold: int  # -1: always in training (COLD)
    raw: str = ""  # as written (the rules read it)


@dataclass(slots=True)
class TrainConfig:
    seed: int = 13
    folds: int = 4
    min_count: int = 2
    # mini-batch Adam (``fit``): out of fold on the train split, recall at the alert criterion against the full-batch
    # fit it replaced (300 steps, lr 0.05, L2 1e-3, 1e-4 for customer_anger): conflict 0.867 → 0.902, customer_anger
    # 0.817 → 0.841; deflection (a quarter of the examples, so more passes in 1,000 steps) 0.861 → 0.877. Around it,
    # 4 to 16 passes, batches of 64 to 256, lr 3e-3 to 1e-2 and L2 0 to 1e-4 all gave 0.895–0.912 / 0.824–0.853
    l2: float = 1e-5
    l2_by_label: dict[str, float] = field(default_factory=dict)
    steps: int = 1000
    batch: int = 256
    learning_rate: float = 0.003
    positive_weight: float = 4.0  # in-domain positives are few; this balances them against the negatives
    # deflection has no COLD and its in-domain negatives are mostly other agent labels' rows: out of fold, an
    # unweighted loss ranks its positives better (dev recall at the alert threshold 0.78 against 0.75 with 4)
    positive_weight_by_label: dict[str, float] = field(default_factory=lambda: {"deflection": 1.0})
    alert_precision: float = 0.95
    max_false_alarms: float = 1.0  # per 1,000 JDDC messages, out of fold
    # customer_anger reads customer messages, and some real JD customers are angry: a looser cap
    max_false_alarms_by_label: dict[str, float] = field(default_factory=lambda: {"customer_anger": 5.0})
    # a floor under the alert threshold: with 4-grams and start/end marks, conflict scores short "I can't help"
    # lines (我管不了这个, 我也没办法…) around 0.75-0.79; detectors/data/eval_utterances.jsonl (the rules' tuned
    # set, never trained on) showed it, and alerting on them would call deflection conflict
    # deflection likewise: the mini-batch fit scores plain pointers 0.60-0.62 (您可以拨打客服电话95118 in that set,
    # 这个请您看详情页 in tests/unit/detectors/test_profiles.py, neither a deflection)
    min_alert_by_label: dict[str, float] = field(default_factory=lambda: {"conflict": 0.80, "deflection": 0.62})
    # customer_anger gains from more of COLD's offensive vocabulary (out-of-fold recall at the alert threshold 0.72
    # against 0.70 at the default; conflict loses: 0.78 against 0.81)
    source_weights_by_label: dict[str, dict[str, float]] = field(
        default_factory=lambda: {"customer_anger": {"cold": 0.02}})
    review_precision: float = 0.6
    max_review_per_1k: float = 20.0  # JDDC messages per 1,000 the model may add to the QA review queue
    # n-grams kept per label (largest |weight|): a smaller weights file and fewer cache misses per lookup. 30,000
    # against 40,000: 47 → 43 µs per message on the JDDC sample; one alert of about 20,000 train and JDDC messages moved
    keep: int = 30_000


@dataclass(slots=True)
class LabelReport:
    label: str
    sender: str
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    features: int = 0
    kept: int = 0
    alert: float = 1.0
    review: float = 1.0
    dev: dict[str, float] = field(default_factory=dict)
    guard: int = 0  # look-alikes the alert threshold was kept above
    guard_max: float = 0.0


def read_guard(folder: Path, label: str) -> list[str]:
    """Look-alike messages of the label's sender that do not carry it (an alert on one is a false alarm)."""
    path = folder / "lookalikes.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["text"] for row in rows if row.get("sender") == LABEL_SENDERS[label] and label not in row["labels"]]


def _fold(text: str, folds: int, seed: int) -> int:
    digest = hashlib.blake2b(f"{seed}\x1f{text}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % folds


def read_indomain(folder: Path, label: str) -> list[dict[str, Any]]:
    """The TRAIN rows for ``label`` (and for agent labels the other agent labels' train rows)."""
    sender = LABEL_SENDERS[label]
    names = [name for name, who in LABEL_SENDERS.items() if who == sender]
    rows: list[dict[str, Any]] = []
    for name in names:
        path = folder / f"{name}.train.jsonl"
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    row = json.loads(line)
                    if row.get("sender") == sender and isinstance(row.get("text"), str):
                        rows.append(row)
    return rows


def read_cold(folder: Path) -> list[tuple[str, bool]]:
    """(text, offensive) from COLD's train.csv (its dev and test files are not used)."""
    path = folder / "train.csv"
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for record in csv.DictReader(handle):
            text = (record.get("TEXT") or "").strip()
            if text and record.get("label") in ("0", "1"):
                rows.append((text, record["label"] == "1"))
    return rows


def build_examples(label: str, indomain: Sequence[dict[str, Any]], jddc: Sequence[tuple[str, str]],
                   cold: Sequence[tuple[str, bool]], normalise: Normaliser, config: TrainConfig,
                   reviewed: Mapping[str, str] | None = None) -> list[Example]:
    sender = LABEL_SENDERS[label]
    reviewed = reviewed or {}
    examples: list[Example] = []
    seen: set[str] = set()

    def read(raw: str) -> str:  # what the model reads (detectors.model.SecondOpinion.grams)
        return mask_quotes(normalise(raw).text)

    for row in indomain:
        text = read(row["text"])
        if text and text not in seen:
            seen.add(text)
            examples.append(Example(text, label in row.get("labels", []), "indomain",
                                    _fold(text, config.folds, config.seed), row["text"]))
    for who, raw in jddc:
        verdict = reviewed.get(jddc_digest(raw), "negative") if reviewed else "negative"
        if who != sender or verdict == "unsure":
            continue
        text = read(raw)
        if text and text not in seen:
            seen.add(text)
            examples.append(Example(text, verdict == "positive", "jddc", _fold(text, config.folds, config.seed), raw))
    if label != "deflection":
        for raw, offensive in cold:
            text = read(raw)
            if text and text not in seen:
                seen.add(text)
                examples.append(Example(text, offensive, "cold", -1))
    return examples


class Vocabulary:
    def __init__(self, texts: Iterable[str], min_count: int) -> None:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(ngrams(text, ORDERS, BOUNDS))
        self.grams = sorted(gram for gram, count in counts.items() if count >= min_count)
        self.index = {gram: i for i, gram in enumerate(self.grams)}

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """CSR-style (row start offsets, column indices) of the binary n-gram matrix."""
        indptr = [0]
        indices: list[int] = []
        for text in texts:
            cols = sorted(self.index[g] for g in ngrams(text, ORDERS, BOUNDS) if g in self.index)
            indices.extend(cols)
            indptr.append(len(indices))
        return np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
    return result


def fit(indptr: np.ndarray, indices: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, features: int,
        config: TrainConfig) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by mini-batch Adam: ``config.steps`` steps of ``config.batch`` examples,
    the examples reshuffled each pass from ``config.seed``, so the same data give the same weights bit for bit.

    Each batch's loss is its weighted mean log loss; the penalty ``config.l2 * w`` is added to every weight's
    gradient at every step (as Adam with coupled weight decay does), so n-grams absent from a batch decay too."""
    rows = len(indptr) - 1
    lengths = np.diff(indptr)
    w = np.zeros(features)
    b = 0.0
    m_w, v_w = np.zeros(features), np.zeros(features)
    m_b = v_b = 0.0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    if rows == 0:
        return w, b
    rng = np.random.default_rng(config.seed)
    order: np.ndarray = np.empty(0, dtype=np.int64)
    for step in range(1, config.steps + 1):
        if len(order) == 0:
            order = rng.permutation(rows)
        chosen, order = order[:config.batch], order[config.batch:]
        columns = np.concatenate([indices[indptr[r]:indptr[r + 1]] for r in chosen])
        row_of = np.repeat(np.arange(len(chosen)), lengths[chosen])
        z = np.bincount(row_of, weights=w[columns], minlength=len(chosen)) + b
        weight = sample_weight[chosen]
        residual = (_sigmoid(z) - y[chosen]) * weight / weight.sum()
        grad_w = np.bincount(columns, weights=residual[row_of], minlength=features) + config.l2 * w
        grad_b = float(residual.sum())
        m_w = beta1 * m_w + (1 - beta1) * grad_w
        v_w = beta2 * v_w + (1 - beta2) * grad_w * grad_w
        m_b = beta1 * m_b + (1 - beta1) * grad_b
        v_b = beta2 * v_b + (1 - beta2) * grad_b * grad_b
        correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
        w -= config.learning_rate * (m_w / correction1) / (np.sqrt(v_w / correction2) + eps)
        b -= config.learning_rate * (m_b / correction1) / (np.sqrt(v_b / correction2) + eps)
    return w, b


def _weights(examples: Sequence[Example], config: TrainConfig, label: str = "") -> np.ndarray:
    positive_weight = config.positive_weight_by_label.get(label, config.positive_weight)
    sources = {**SOURCE_WEIGHTS, **config.source_weights_by_label.get(label, {})}
    return np.asarray([sources[e.source] * (positive_weight if e.positive and e.source != "cold"
                                            else 1.0) for e in examples])


def _train(examples: Sequence[Example], config: TrainConfig,
           label: str = "") -> tuple[Vocabulary, np.ndarray, float]:
    vocabulary = Vocabulary((e.text for e in examples), config.min_count)
    indptr, indices = vocabulary.encode([e.text for e in examples])
    y = np.asarray([1.0 if e.positive else 0.0 for e in examples])
    penalised = replace(config, l2=config.l2_by_label.get(label, config.l2))
    w, b = fit(indptr, indices, y, _weights(examples, config, label), len(vocabulary.grams), penalised)
    return vocabulary, w, b


def _predict(vocabulary: Vocabulary, w: np.ndarray, b: float, texts: Sequence[str]) -> np.ndarray:
    indptr, indices = vocabulary.encode(texts)
    rows = len(indptr) - 1
    row_of = np.repeat(np.arange(rows), np.diff(indptr))
    return np.asarray(_sigmoid(np.bincount(row_of, weights=w[indices], minlength=rows) + b))


def out_of_fold(examples: Sequence[Example], config: TrainConfig,
                progress: Callable[[str], None] = lambda _: None,
                guard: Sequence[str] = (), label: str = "") -> tuple[np.ndarray, float]:
    """A score for every in-domain and JDDC example from a model that did not see its fold, and the
    highest score any fold's model gives a ``guard`` text (never trained on)."""
    scores = np.full(len(examples), np.nan)
    guard_max = 0.0
    for fold in range(config.folds):
        train = [e for e in examples if e.fold != fold]
        held = [i for i, e in enumerate(examples) if e.fold == fold]
        vocabulary, w, b = _train(train, config, label)
        scores[held] = _predict(vocabulary, w, b, [examples[i].text for i in held])
        if guard:
            guard_max = max(guard_max, float(_predict(vocabulary, w, b, list(guard)).max()))
        progress(f"  fold {fold + 1}/{config.folds}")
    return scores, guard_max


def choose_thresholds(examples: Sequence[Example], scores: np.ndarray, config: TrainConfig,
                      ruled: Sequence[bool] | None = None, label: str = "",
                      floor: float = 0.0) -> tuple[float, float, dict[str, float]]:
    """(review, alert, dev figures at those thresholds) from out-of-fold scores.

    The model only speaks where the rules found nothing of its label, so the figures are those of
    the rules and the model together (``ruled``: the rules' verdict per example), and JDDC false
    alarms count the model's additions only.
    """
    indomain = [i for i, e in enumerate(examples) if e.source == "indomain"]
    jddc = [i for i, e in enumerate(examples) if e.source == "jddc"]
    positives = sum(1 for i in indomain if examples[i].positive)
    rule = list(ruled) if ruled is not None else [False] * len(examples)

    def figures(threshold: float) -> dict[str, float]:
        tp = sum(1 for i in indomain if examples[i].positive and (rule[i] or scores[i] >= threshold))
        fp = sum(1 for i in indomain if not examples[i].positive and (rule[i] or scores[i] >= threshold))
        added_tp = sum(1 for i in indomain if examples[i].positive and not rule[i] and scores[i] >= threshold)
        added_fp = sum(1 for i in indomain if not examples[i].positive and not rule[i] and scores[i] >= threshold)
        fp_jddc = sum(1 for i in jddc if not rule[i] and not examples[i].positive and scores[i] >= threshold)
        return {"threshold": round(threshold, 4), "precision": tp / (tp + fp) if tp + fp else 1.0,
                "recall": tp / positives if positives else 0.0, "tp": tp, "fp": fp,
                "model_precision": added_tp / (added_tp + added_fp) if added_tp + added_fp else 1.0,
                "jddc_per_1k": 1000 * fp_jddc / len(jddc) if jddc else 0.0}

    cap = config.max_false_alarms_by_label.get(label, config.max_false_alarms)
    floor = max(floor, config.min_alert_by_label.get(label, 0.0))
    candidates = [round(t, 2) for t in np.arange(0.05, 1.0, 0.01)]
    alert = next((t for t in candidates if t > floor and figures(t)["model_precision"] >= config.alert_precision
                  and figures(t)["jddc_per_1k"] <= cap), 0.99)
    review = next((t for t in candidates if figures(t)["model_precision"] >= config.review_precision
                   and figures(t)["jddc_per_1k"] <= config.max_review_per_1k), alert)
    review = min(review, alert)
    at_alert, at_review = figures(alert), figures(review)
    dev = {**{f"alert_{k}": v for k, v in at_alert.items()}, **{f"review_{k}": v for k, v in at_review.items()}}
    return review, alert, dev


RuleVerdict = Callable[[str, str, str], bool]  # (text as written, sender, label) → the rules found the label


def train_label(label: str, indomain: Sequence[dict[str, Any]], jddc: Sequence[tuple[str, str]],
                cold: Sequence[tuple[str, bool]], normalise: Normaliser, config: TrainConfig,
                progress: Callable[[str], None] = lambda _: None,
                rules: RuleVerdict | None = None, guard: Sequence[str] = (),
                reviewed: Mapping[str, str] | None = None) -> tuple[dict[str, Any], LabelReport]:
    examples = build_examples(label, indomain, jddc, cold, normalise, config, reviewed)
    report = LabelReport(label, LABEL_SENDERS[label])
    for source in ("indomain", "jddc", "cold"):
        chosen = [e for e in examples if e.source == source]
        if chosen:
            report.sizes[source] = {"positive": sum(e.positive for e in chosen),
                                    "negative": sum(not e.positive for e in chosen)}
    progress(f"{label}: {len(examples)} examples")
    guard_texts = [mask_quotes(normalise(text).text) for text in guard]
    scores, report.guard_max = out_of_fold(examples, config, progress, guard_texts, label)
    ruled = [e.source != "cold" and rules(e.raw, LABEL_SENDERS[label], label) for e in examples] if rules else None
    report.review, report.alert, report.dev = choose_thresholds(examples, scores, config, ruled, label,
                                                                report.guard_max)
    report.guard = len(guard_texts)
    vocabulary, w, b = _train(examples, config, label)
    report.features = len(vocabulary.grams)
    order = np.argsort(-np.abs(w), kind="stable")[:config.keep]
    kept = {vocabulary.grams[i]: round(float(w[i]), 4) for i in sorted(order) if abs(w[i]) >= 1e-4}
    report.kept = len(kept)
    return {"sender": LABEL_SENDERS[label], "bias": round(b, 4), "weights": kept}, report


def train_all(indomain_dir: Path, jddc: Sequence[tuple[str, str]], cold: Sequence[tuple[str, bool]],
              normalise: Normaliser, config: TrainConfig, progress: Callable[[str], None] = lambda _: None,
              rules: RuleVerdict | None = None) -> tuple[dict[str, Any], list[LabelReport]]:
    """The weights document and one report per label."""
    labels: dict[str, Any] = {}
    reports = []
    for label in LABEL_SENDERS:
        rows = read_indomain(indomain_dir, label)
        entry, report = train_label(label, rows, jddc, cold, normalise, config, progress, rules,
                                    read_guard(indomain_dir, label), read_reviewed(indomain_dir, label))
        labels[label] = entry
        reports.append(report)
    document = {"format": FORMAT, "orders": list(ORDERS), "seed": config.seed, "mask_quotes": True, "bounds": BOUNDS,
                "labels": labels}
    return document, reports


def format_report(reports: Sequence[LabelReport], config: TrainConfig, sources: dict[str, str]) -> str:
    lines = [
        "# Training report: the learned second opinion (detectors/models/second_opinion.json)",
        "",
        "Written by `zhijian train`; do not edit by hand. Reproduce: `zhijian train` (needs ../shared/data).",
        "",
        f"- seed {config.seed}, {config.folds} folds, n-grams {ORDERS} seen ≥ {config.min_count} times, "
        f"L2 {config.l2} (per label: {config.l2_by_label}), {config.steps} Adam steps of {config.batch} examples "
        f"(lr {config.learning_rate}), "
        f"in-domain positive weight "
        f"{config.positive_weight} (per label: {config.positive_weight_by_label}), source weights {SOURCE_WEIGHTS} "
        f"(per label: {config.source_weights_by_label})",
        f"- thresholds from out-of-fold scores on the training data (never the frozen test splits), for the rules "
        f"and the model together: alert = lowest at which the model's additions (messages the rules did not flag) "
        f"have precision ≥ {config.alert_precision} and ≤ "
        f"{config.max_false_alarms} JDDC messages per 1,000 added by the model "
        f"(per label: {config.max_false_alarms_by_label}), and above a floor (per label: "
        f"{config.min_alert_by_label}); review = lowest with additions' precision ≥ "
        f"{config.review_precision} and ≤ {config.max_review_per_1k} JDDC messages per 1,000 sent to review. "
        "dev figures below are those out-of-fold figures (rules + model)",
        "- the model reads the normalised text with the inside of quotations and 《》 titles removed "
        "(quoting the customer or a product name is not saying it)",
        "- look-alikes (detectors/data/indomain/lookalikes.jsonl) are a guard, never trained on: the alert threshold "
        "is kept above the highest out-of-fold score of a look-alike of the label's sender, so the look-alike suite "
        "measures the rules but constrains the model",
        "- JDDC messages are negatives except those a reviewer marked in detectors/data/indomain/jddc_reviewed.jsonl "
        "(positives; `unsure` ones are left out); the JDDC false-alarm figures count the negatives only",
        *(f"- {name}: {where}" for name, where in sources.items()),
        "",
        "| label | sender | in-domain +/− | JDDC +/− | COLD +/− | n-grams (kept) | look-alikes (max score) | review "
        "| alert | dev P@alert | dev model-added P@alert | dev R@alert | dev JDDC/1k@alert | dev P@review "
        "| dev R@review |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        indomain = r.sizes.get("indomain", {})
        cold = r.sizes.get("cold", {})
        jddc = r.sizes.get("jddc", {})
        lines.append(
            f"| {r.label} | {r.sender} | {indomain.get('positive', 0)}/{indomain.get('negative', 0)} "
            f"| {jddc.get('positive', 0)}/{jddc.get('negative', 0)} "
            f"| {cold.get('positive', 0)}/{cold.get('negative', 0)} "
            f"| {r.features} ({r.kept}) | {r.guard} ({r.guard_max:.2f}) | {r.review:.2f} | {r.alert:.2f} "
            f"| {r.dev['alert_precision']:.3f} | {r.dev['alert_model_precision']:.3f} "
            f"| {r.dev['alert_recall']:.3f} | {r.dev['alert_jddc_per_1k']:.2f} | {r.dev['review_precision']:.3f} "
            f"| {r.dev['review_recall']:.3f} |"
        )
    lines += ["", "Thresholds as rule-set data (seed.toml `[model]`):", "", "```toml"]
    lines += [f"{r.label} = {{ review = {r.review:.2f}, alert = {r.alert:.2f} }}" for r in reports]
    lines += ["```", ""]
    return "\n".join(lines)
