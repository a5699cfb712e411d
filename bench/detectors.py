"""Detector speed on the real replay, and what a sentiment model would add to customer_anger.

Run as part of ``make bench`` or alone: ``python -m bench.detectors``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from detectors import Detector, RuleBook, load_ruleset, parse_ruleset
from detectors.evaluation import DATA_DIR, read_jsonl
from detectors.ruleset import labels_of
from zhijian.core.corpus import jddc_path, read_jddc


def corpus_rows() -> tuple[list[tuple[str, str]], str]:
    path = jddc_path()
    if path.exists():
        rows = [(sender, text) for _, sender, text in read_jddc(path)]
        return rows, f"JDDC sample, {len(rows)} messages"
    rows = [(s["sender"], s["text"]) for s in read_jsonl(DATA_DIR / "eval_utterances.jsonl")] * 30
    return rows, f"labelled set x30 ({len(rows)} messages; JDDC sample not found)"


def percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time(detector: Detector, rows: Sequence[tuple[str, str]]) -> tuple[float, list[float]]:
    """(mean CPU µs per message, sorted wall-clock µs per message). The mean is CPU time of this
    process, so other work on a shared machine does not inflate it; percentiles are wall clock."""
    for sender, text in rows:  # warm-up: lazy maps, caches
        detector.detect(text, sender)
    cpu = time.process_time_ns()
    for sender, text in rows:
        detector.detect(text, sender)
    mean = (time.process_time_ns() - cpu) / 1000 / len(rows)
    times = []
    for sender, text in rows:
        start = time.perf_counter_ns()
        detector.detect(text, sender)
        times.append((time.perf_counter_ns() - start) / 1000)
    times.sort()
    return mean, times


def detector_timing() -> dict[str, float]:
    """Mean cost per message of the rules alone and of the rules with the model, as shipped (target ≤ 50 µs)."""
    rows, source = corpus_rows()
    seed = load_ruleset()
    variants = {
        "rules only": Detector(parse_ruleset({**seed.document, "model": {"enabled": False}})),
        "rules + model (shipped)": Detector(seed),
        "rules + model, jd profile": Detector(seed.for_profile("jd")),
    }
    result: dict[str, float] = {}
    print(f"detectors on {source} (normalisation included; mean = CPU time, p50/p99 = wall clock):", flush=True)
    for name, detector in variants.items():
        mean, times = _time(detector, rows)
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        print(f"  {name:28} mean {mean:5.1f} µs, p50 {p50:5.1f} µs, p99 {p99:6.1f} µs per message", flush=True)
        if name == "rules + model (shipped)":
            result = {"mean_us": mean, "p50_us": p50, "p99_us": p99, "messages": len(rows)}
    print(f"  target: mean ≤ 50 µs per message with the model: {'met' if result['mean_us'] <= 50 else 'MISSED'}")
    return result


def sentiment_comparison(threshold: float = 0.2) -> None:
    """customer_anger by lexicon alone vs with snownlp's offline model (shipped in its wheel)."""
    try:
        from snownlp import SnowNLP
    except ImportError:
        print("sentiment comparison: snownlp not installed (pip install snownlp)")
        return
    book = RuleBook(load_ruleset())
    samples = [s for s in read_jsonl(DATA_DIR / "eval_utterances.jsonl") + read_jsonl(DATA_DIR / "eval_holdout.jsonl")
               if s["sender"] == "customer"]
    truth = ["customer_anger" in s["labels"] for s in samples]
    lexicon = ["customer_anger" in labels_of(book.detect(s["text"], "customer")) for s in samples]
    start = time.perf_counter()
    scores = [SnowNLP(s["text"]).sentiments for s in samples]
    model_us = (time.perf_counter() - start) / len(samples) * 1e6
    model = [score < threshold for score in scores]

    def report(name: str, predicted: list[bool]) -> None:
        tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
        fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
        fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"  {name:34} precision {precision:.3f}  recall {recall:.3f}  (fp {fp}, fn {fn})")

    print(f"customer_anger on {len(samples)} labelled customer messages ({sum(truth)} angry):")
    report("lexicon (shipped)", lexicon)
    report(f"snownlp < {threshold}", model)
    report(f"lexicon or snownlp < {threshold}", [a or b for a, b in zip(lexicon, model, strict=True)])
    polite = [SnowNLP(t).sentiments for t in ("麻烦您了", "不好意思打扰了", "辛苦了")]
    print(f"  snownlp: {model_us:.0f} µs per message; polite phrases score "
          + ", ".join(f"{p:.2f}" for p in polite) + " (0 = negative)")


if __name__ == "__main__":
    detector_timing()
    sentiment_comparison()
