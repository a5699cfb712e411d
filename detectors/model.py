"""The learned second opinion: a linear model on character n-grams, inference in plain Python.

For ``conflict`` and ``deflection`` (agent messages) and ``customer_anger`` (customer messages)
a logistic regression over the set of character 1–3-grams of the normalised text (the same
normalisation the rules use) gives a probability. The weights file is a build product of
``zhijian train`` (detectors/training.py), checked in next to its training report; nothing is
downloaded. Thresholds and switches are rule-set data (``[model]``, per profile and shop), so
they reload live with the rules.

Only n-grams kept by training have a weight, so scoring a message is one set of slices and
one dictionary lookup per n-gram.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MODEL_PATH = Path(__file__).with_name("models") / "second_opinion.json"
FORMAT = "zhijian-ngram-lr/1"
MAX_CHARS = 300  # the model reads a message's first 300 characters (longer ones are rare and cost the most)


def ngrams(text: str, orders: tuple[int, ...] = (1, 2, 3)) -> set[str]:
    """The distinct character n-grams of ``text[:MAX_CHARS]`` (whitespace kept: the model learns what it means)."""
    text = text[:MAX_CHARS]
    grams: set[str] = set()
    length = len(text)
    for n in orders:
        grams.update(text[i:i + n] for i in range(length - n + 1))
    return grams


@dataclass(frozen=True, slots=True)
class Opinion:
    label: str
    score: float  # probability from the logistic model
    evidence: tuple[str, ...]  # the n-grams present that weighed most toward the label


@dataclass(frozen=True, slots=True)
class LabelModel:
    label: str
    sender: str
    bias: float
    weights: Mapping[str, float]

    def probability(self, grams: set[str]) -> float:
        """The probability alone: one C-level pass over the n-grams (the per-message hot path)."""
        total = self.bias + sum(filter(None, map(self.weights.get, grams)))
        return 1.0 / (1.0 + math.exp(-total)) if total > -60 else 0.0

    def score(self, grams: set[str], evidence: int = 3) -> Opinion:
        """The probability and the ``evidence`` n-grams present that weigh most toward the label."""
        weights = self.weights
        present = sorted(((weights[g], g) for g in grams if weights.get(g, 0.0) > 0), reverse=True)
        return Opinion(self.label, self.probability(grams), tuple(gram for _, gram in present[:evidence]))


@dataclass(frozen=True, slots=True)
class SecondOpinion:
    """Every label's model, loaded once per weights file."""

    labels: Mapping[str, LabelModel]
    orders: tuple[int, ...]
    meta: Mapping[str, Any]

    def for_sender(self, sender: str) -> tuple[LabelModel, ...]:
        return tuple(model for model in self.labels.values() if model.sender == sender)

    def score(self, text: str, sender: str) -> list[Opinion]:
        """Scores for every label of ``sender`` on already-normalised ``text``."""
        models = self.for_sender(sender)
        if not models or not text:
            return []
        grams = ngrams(text, self.orders)
        return [model.score(grams) for model in models]


def parse_model(document: Mapping[str, Any]) -> SecondOpinion:
    if document.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} weights file (format {document.get('format')!r})")
    orders = tuple(int(n) for n in document["orders"])
    labels = {
        label: LabelModel(label, str(entry["sender"]), float(entry["bias"]),
                          {str(gram): float(weight) for gram, weight in entry["weights"].items()})
        for label, entry in document["labels"].items()
    }
    meta = {key: value for key, value in document.items() if key not in ("labels",)}
    return SecondOpinion(labels, orders, meta)


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> SecondOpinion | None:
    """The weights at ``path``, or None when there is no weights file (the rules then work alone)."""
    if not path.exists():
        return None
    return parse_model(json.loads(path.read_text(encoding="utf-8")))
