"""Regression floors on the in-domain sets: frozen test splits, evasions, look-alikes.

The floors sit a little under the figures ``zhijian eval`` printed when they were set (see the
README table), so a change that loses recall or precision fails here. The frozen splits were
never used to train the model or to choose a threshold; the evasion and look-alike suites are
regression suites (the rules were written with them in view).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors import Detector, load_ruleset
from detectors.evaluation import (
    INDOMAIN_DIR,
    SPLITS,
    evaluate_evasions,
    evaluate_lookalikes,
    evaluate_split,
    read_jsonl,
    read_split,
)

DETECTOR = Detector(load_ruleset())

# label file → (precision floor, recall floor) for rules and model together, as shipped; measured (`zhijian eval`):
# conflict 0.993/0.746, deflection 1.000/0.810, customer_anger 0.956/0.824, pii 0.964/0.955 (rules only).
# The rules' second pass over the train split's misses (deflection.send_to_party, more conflict and anger terms)
# moved conflict from 0.731 and deflection from 0.788 (its target 0.8 met again).
FLOORS = {
    "conflict": (0.97, 0.73),
    "deflection": (0.97, 0.79),
    "customer_anger": (0.94, 0.80),
    "pii": (0.94, 0.94),
}
# with the model's review-only findings (the QA queue): measured 0.965/0.970, 0.959/1.000, 0.917/0.943
QUEUE_FLOORS = {"conflict": (0.94, 0.95), "deflection": (0.93, 0.98), "customer_anger": (0.90, 0.93)}


def test_the_frozen_splits_are_big_enough() -> None:
    for name, label in SPLITS.items():
        rows = read_split(name, "test")
        assert sum(label in row["labels"] for row in rows) >= 150, name
        assert sum(label not in row["labels"] for row in rows) >= 150, name


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_frozen_split_floors(name: str) -> None:
    result = evaluate_split(read_split(name, "test"), SPLITS[name], DETECTOR)
    precision, recall = FLOORS[name]
    assert result.combined.precision >= precision, result.combined.false_positives
    assert result.combined.recall >= recall, len(result.combined.misses)
    # the model only adds: together never below the rules alone
    assert result.combined.recall >= result.rules.recall
    if name in QUEUE_FLOORS:
        assert result.queued is not None
        assert result.queued.precision >= QUEUE_FLOORS[name][0]
        assert result.queued.recall >= QUEUE_FLOORS[name][1]


def test_evasions_are_caught() -> None:
    suite = evaluate_evasions(read_jsonl(INDOMAIN_DIR / "evasions.jsonl"), DETECTOR)
    assert suite.total >= 80
    assert suite.rate >= 0.95, suite.failures


def test_lookalikes_raise_no_alarm() -> None:
    suite = evaluate_lookalikes(read_jsonl(INDOMAIN_DIR / "lookalikes.jsonl"), DETECTOR)
    assert suite.total >= 80
    assert suite.failures == []


def test_eval_and_train_say_what_is_missing_instead_of_failing(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from zhijian.cli import main

    assert main(["eval", "--jddc", str(tmp_path / "absent.txt")]) == 0
    out = capsys.readouterr().out
    assert "frozen test splits" in out and "false-positive scan skipped" in out
    assert "lookalikes: 110/110 without an alarm" in out
    assert main(["train", "--cold", str(tmp_path), "--jddc", str(tmp_path / "absent.txt"),
                 "--out", str(tmp_path / "w.json")]) == 2
    assert "needs the shared corpora" in capsys.readouterr().err
    assert not (tmp_path / "w.json").exists()
