"""The learned second opinion: a linear model on character n-grams, inference in plain Python.

For ``conflict`` and ``deflection`` (agent messages) and ``customer_anger`` (customer messages)
a logistic regression over the set of character 1–3-grams of the normalised text (the same
normalisation the rules use; with ``mask_quotes`` in the weights file, the inside of quotations
and 《》 titles removed) gives a probability. The weights file is a build product of
``zhijian train`` (detectors/training.py), checked in next to its training report; nothing is
downloaded. Thresholds and switches are rule-set data (``[model]``, per profile and shop), so
they reload live with the rules.

Only n-grams kept by training have a weight, so scoring a message is one set of slices and
one dictionary lookup per n-gram.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import add
from pathlib import Path
from typing import Any

MODEL_PATH = Path(__file__).with_name("models") / "second_opinion.json"
FORMAT = "zhijian-ngram-lr/1"
MAX_CHARS = 300  # the model reads a message's first 300 characters (longer ones are rare and cost the most)

# Quotations and titles (after normalisation). The rules' ``quoted_ok`` and the model's quote masking share them.
QUOTED = re.compile(r'“[^“”]{1,60}”|"[^"]{1,60}"|「[^「」]{1,60}」|『[^『』]{1,60}』|《[^《》]{1,60}》|‘[^‘’]{1,60}’'
                    r"|〈[^〈〉]{1,60}〉|【[^【】]{1,60}】")
QUOTE_OPENERS = re.compile(r'[“"「『《‘〈【]')


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """Quotations and titles in ``text``; a quotation that is the whole message is the writer's own words."""
    if not QUOTE_OPENERS.search(text):
        return []
    stripped = text.strip(" .!?~,。")
    return [m.span() for m in QUOTED.finditer(text) if m.group().startswith("《") or m.group() != stripped]


def mask_quotes(text: str) -> str:
    """``text`` with what is inside quotation marks and 《》 removed (the marks kept): an agent quoting the
    customer (您说“你们就是骗子”) or a product title is not saying those words. The model reads this."""
    spans = quoted_spans(text)
    if not spans:
        return text
    parts, last = [], 0
    for start, end in spans:
        parts += [text[last:start + 1], text[end - 1]]
        last = end
    parts.append(text[last:])
    return "".join(parts)


# Marks for the start and end of a message (``bounds`` in the weights file): n-grams that touch them say where a
# phrase stands ("你们…" opening a message, "…吗" closing it), which a bag of n-grams cannot tell otherwise
START, END = "\x02", "\x03"


def ngrams(text: str, orders: tuple[int, ...] = (1, 2, 3), bounds: bool = False) -> set[str]:
    """The distinct character n-grams of ``text[:MAX_CHARS]`` (whitespace kept: the model learns what it means);
    with ``bounds``, of the text between a start and an end mark (the marks alone are not n-grams).

    Each order is built from the one below by a C-level ``map`` (the (n-1)-gram at i plus the character at
    i+n-1), about a third faster than slicing every n-gram out of the text."""
    text = text[:MAX_CHARS]
    if not text:
        return set()
    if bounds:
        text = START + text + END
    grams: set[str] = set()
    level: list[str] = list(text)
    for n in range(1, max(orders, default=0) + 1):
        if n > 1:
            level = list(map(add, level, text[n - 1:]))
        if n in orders:
            grams.update(level)
    if bounds:
        grams.discard(START)
        grams.discard(END)
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
        return _sigmoid(self.bias + sum(filter(None, map(self.weights.get, grams))))

    def score(self, grams: set[str], evidence: int = 3) -> Opinion:
        """The probability and the ``evidence`` n-grams present that weigh most toward the label."""
        weights = self.weights
        present = sorted(((weights[g], g) for g in grams if weights.get(g, 0.0) > 0), reverse=True)
        shown = tuple(gram.replace(START, "^").replace(END, "$") for _, gram in present[:evidence])  # marks readable
        return Opinion(self.label, self.probability(grams), shown)


def _sigmoid(total: float) -> float:
    return 1.0 / (1.0 + math.exp(-total)) if total > -60 else 0.0


@dataclass(frozen=True, slots=True)
class LabelGroup:
    """The label models one message is scored with, in a single pass over its n-grams: two labels (an agent's
    conflict and deflection) share one dictionary whose values are complex numbers — the first label's weight
    as the real part, the second's as the imaginary part — so one C-level sum gives both totals."""

    models: tuple[LabelModel, ...]
    packed: Mapping[str, complex] | None  # for exactly two models

    @classmethod
    def of(cls, models: tuple[LabelModel, ...]) -> LabelGroup:
        if len(models) != 2:
            return cls(models, None)
        first, second = models[0].weights, models[1].weights
        packed = {gram: complex(first.get(gram, 0.0), second.get(gram, 0.0)) for gram in first.keys() | second.keys()}
        return cls(models, packed)

    def probabilities(self, grams: set[str]) -> tuple[float, ...]:
        if self.packed is None:
            return tuple(model.probability(grams) for model in self.models)
        total = sum(filter(None, map(self.packed.get, grams)), 0j)
        return (_sigmoid(self.models[0].bias + total.real), _sigmoid(self.models[1].bias + total.imag))


@dataclass(frozen=True, slots=True)
class SecondOpinion:
    """Every label's model, loaded once per weights file."""

    labels: Mapping[str, LabelModel]
    orders: tuple[int, ...]
    meta: Mapping[str, Any]
    masks_quotes: bool = False  # trained on quote-masked text (``mask_quotes``), so it must read the same
    bounds: bool = False  # trained with start/end marks (``ngrams(..., bounds=True)``)

    def grams(self, text: str) -> set[str]:
        """The n-grams the model reads from already-normalised ``text``."""
        return ngrams(mask_quotes(text) if self.masks_quotes else text, self.orders, self.bounds)

    def for_sender(self, sender: str) -> tuple[LabelModel, ...]:
        return tuple(model for model in self.labels.values() if model.sender == sender)

    def score(self, text: str, sender: str) -> list[Opinion]:
        """Scores for every label of ``sender`` on already-normalised ``text``."""
        models = self.for_sender(sender)
        if not models or not text:
            return []
        grams = self.grams(text)
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
    return SecondOpinion(labels, orders, meta, bool(document.get("mask_quotes", False)),
                         bool(document.get("bounds", False)))


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> SecondOpinion | None:
    """The weights at ``path``, or None when there is no weights file (the rules then work alone)."""
    if not path.exists():
        return None
    return parse_model(json.loads(path.read_text(encoding="utf-8")))
