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
# conflict 1.000/0.786, deflection 1.000/0.937, customer_anger 0.967/0.838, pii 0.964/0.955 (rules only).
# The mini-batch fit of the model moved conflict from 0.751, deflection from 0.862 (with the fifth round of its train
# lines; 0.810 before them) and customer_anger from 0.824.
FLOORS = {
    "conflict": (0.97, 0.77),
    "deflection": (0.97, 0.92),
    "customer_anger": (0.94, 0.82),
    "pii": (0.94, 0.94),
}
# with the model's review-only findings (the QA queue): measured 0.961/0.970, 0.969/0.995, 0.951/0.919 (the
# customer_anger review threshold rose from 0.39 to 0.56 under the cap of 20 JDDC messages per 1,000 sent to review)
QUEUE_FLOORS = {"conflict": (0.94, 0.95), "deflection": (0.95, 0.98), "customer_anger": (0.93, 0.90)}


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


def test_the_real_chat_scan_counts_reviewed_positives_apart() -> None:
    from detectors import RuleBook
    from detectors.evaluation import format_corpus_report, jddc_digest, scan_corpus

    angry, also_angry, calm = "你们就是骗子，我要投诉", "骗子店铺，我要投诉到平台", "好的，谢谢"
    rows = [("c1", "customer", angry), ("c1", "agent", "您好，很抱歉给您带来不便"), ("c2", "customer", also_angry),
            ("c2", "customer", calm)]
    book = RuleBook(load_ruleset())
    plain = scan_corpus(rows, book)
    assert plain.findings["customer_anger"] == 2 and not plain.confirmed
    report = scan_corpus(rows, book, reviewed={"customer_anger": {jddc_digest(angry): "positive",
                                                                  jddc_digest(calm): "positive"}})
    assert report.findings["customer_anger"] == 2 and report.confirmed["customer_anger"] == 1
    assert ("customer_anger: 1 of the 2 flagged messages were marked customer_anger by a reviewer"
            in format_corpus_report(report, "test rows"))
