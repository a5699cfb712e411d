"""The learned second opinion: deterministic training and inference, the review and alert thresholds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors import Detector, RuleBook, load_ruleset, parse_ruleset
from detectors.model import FORMAT, MODEL_PATH, load_model, mask_quotes, ngrams, parse_model
from detectors.normalise import Normaliser
from detectors.ruleset import SEED_PATH, labels_of, load_document
from detectors.training import TrainConfig, choose_thresholds, fit, train_label

NORMALISE = Normaliser({})
# A tiny in-domain set: hostile agent replies and polite ones (never the frozen test splits)
HOSTILE = ["您这理解能力我真是服了", "同一个问题回答您第五遍了", "您是看不见还是不想看", "理解能力这么差还网购",
           "您自己不看清楚怪谁呢", "说了八百遍了您还问"] * 3
POLITE = ["您好，很高兴为您服务", "这边帮您查一下物流", "您看一下尺码表哦", "好的，已经为您登记",
          "感谢您的耐心等待", "麻烦您提供一下订单号"] * 3


def tiny_rows() -> list[dict[str, Any]]:
    rows = [{"sender": "agent", "text": f"{t}{i}", "labels": ["conflict"]} for i, t in enumerate(HOSTILE)]
    rows += [{"sender": "agent", "text": f"{t}{i}", "labels": []} for i, t in enumerate(POLITE)]
    return rows


def test_ngrams_are_the_distinct_1_to_3_grams() -> None:
    assert ngrams("你好吗") == {"你", "好", "吗", "你好", "好吗", "你好吗"}
    assert ngrams("") == set()


def test_ngrams_of_every_order_are_the_slices_of_the_text() -> None:
    text = "亲，这个尺码偏大一码哦~ 您看下"
    for orders in [(1, 2, 3, 4), (2, 4), (3,)]:
        for bounds in (False, True):
            marked = f"\x02{text}\x03" if bounds else text
            slices = {marked[i:i + n] for n in orders for i in range(len(marked) - n + 1)} - {"\x02", "\x03"}
            assert ngrams(text, orders, bounds) == slices
    assert ngrams("好", (2, 3)) == set()  # shorter than every order


def test_two_labels_scored_in_one_pass_give_each_label_its_own_probability() -> None:
    from detectors.model import LabelGroup, LabelModel

    first = LabelModel("conflict", "agent", -1.0, {"凭什么": 2.5, "您": -0.5, "退": 0.25})
    second = LabelModel("deflection", "agent", -2.0, {"找快递": 3.0, "您": 0.5})
    group = LabelGroup.of((first, second))
    assert group.packed is not None
    for text in ["凭什么给您退", "您找快递吧", "好的", ""]:
        grams = ngrams(text)
        assert group.probabilities(grams) == pytest.approx((first.probability(grams), second.probability(grams)))
    single = LabelGroup.of((first,))
    assert single.packed is None and single.probabilities(ngrams("凭什么")) == (first.probability(ngrams("凭什么")),)


def test_bounds_add_the_ngrams_that_touch_the_start_and_end_of_a_message() -> None:
    start, end = "\x02", "\x03"
    grams = ngrams("你好吗", (1, 2), bounds=True)
    assert grams == {"你", "好", "吗", "你好", "好吗", start + "你", "吗" + end}
    assert ngrams("", (1, 2), bounds=True) == set()
    # "你们" opening a message is not the same feature as "你们" inside one
    assert start + "你们" in ngrams("你们发货太慢", (3,), bounds=True)
    assert start + "你们" not in ngrams("找到你们家", (3,), bounds=True)


def test_a_bounds_model_reads_the_marks_and_shows_them_readably(tmp_path: Path) -> None:
    document = {"format": FORMAT, "orders": [1, 2], "bounds": True, "labels": {
        "customer_anger": {"sender": "customer", "bias": -3.0, "weights": {"\x02凭": 6.0, "凭": 0.5}}}}
    model = parse_model(document)
    assert model.bounds
    opening, inside = model.score("凭什么不退", "customer")[0], model.score("不知道凭什么", "customer")[0]
    assert opening.score > 0.9 > 0.2 > inside.score
    assert opening.evidence == ("^凭", "凭")


def test_the_model_reads_quotations_and_titles_as_their_marks_only() -> None:
    assert mask_quotes("您说“你们就是骗子”，我们理解") == "您说“”，我们理解"
    assert mask_quotes("《别烦我》这本书有货，「爱买不买」是反面例子") == "《》这本书有货，「」是反面例子"
    assert mask_quotes("“爱买不买”") == "“爱买不买”"  # a whole message in quotes is the writer's own words
    assert mask_quotes("没有引号的句子") == "没有引号的句子"
    assert mask_quotes("只有开头“没有结尾") == "只有开头“没有结尾"


def test_a_quote_masking_model_does_not_hear_the_quoted_words(tmp_path: Path) -> None:
    document = {"format": FORMAT, "orders": [1, 2, 3], "mask_quotes": True, "labels": {
        "conflict": {"sender": "agent", "bias": -4.0, "weights": {"西瓜": 7.0}}}}
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    ruleset = load_document(SEED_PATH)
    ruleset["model"] = {"conflict": {"review": 0.5, "alert": 0.9}}
    detector = Detector(parse_ruleset(ruleset), model_path=path)
    assert labels_of(detector.detect("西瓜都有", "agent")) == ["conflict"]
    assert detector.detect("您说的“西瓜都有”我们记下了", "agent", review=True) == []
    unmasked = parse_model({**document, "mask_quotes": False})
    assert unmasked.labels["conflict"].score(unmasked.grams("您说的“西瓜都有”")).score > 0.9


def test_training_is_deterministic_and_learns_the_difference() -> None:
    config = TrainConfig(folds=2, steps=60, min_count=1, keep=500)
    first, report = train_label("conflict", tiny_rows(), [], [], NORMALISE, config)
    second, _ = train_label("conflict", tiny_rows(), [], [], NORMALISE, config)
    assert first == second  # same data, same weights, bit for bit
    assert report.sizes["indomain"] == {"positive": len(HOSTILE), "negative": len(POLITE)}
    model = parse_model({"format": FORMAT, "orders": [1, 2, 3], "labels": {"conflict": first}})
    hostile = model.labels["conflict"].score(ngrams(NORMALISE("您这理解能力真是服了").text))
    polite = model.labels["conflict"].score(ngrams(NORMALISE("您好，帮您查一下").text))
    assert hostile.score > 0.5 > polite.score
    assert hostile.evidence and all(gram in "您这理解能力真是服了" for gram in hostile.evidence)


def test_fit_matches_a_plain_logistic_gradient() -> None:
    # one feature that is on exactly for the positives: the weight goes positive, the bias negative
    indptr = np.array([0, 1, 2, 2, 2])
    indices = np.array([0, 0])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    config = TrainConfig(steps=200, batch=2, learning_rate=0.05, l2=0.0)
    w, b = fit(indptr, indices, y, np.ones(4), 1, config)
    assert w[0] > 2 and b < -2
    again, b_again = fit(indptr, indices, y, np.ones(4), 1, config)
    assert again.tolist() == w.tolist() and b_again == b  # seeded batches: the same fit twice
    # the L2 penalty holds the weight back; a batch of size 1 still sees every example
    penalised = TrainConfig(steps=200, batch=2, learning_rate=0.05, l2=0.1)
    assert fit(indptr, indices, y, np.ones(4), 1, penalised)[0][0] < w[0]
    single = TrainConfig(steps=400, batch=1, learning_rate=0.05, l2=0.0)
    assert fit(indptr, indices, y, np.ones(4), 1, single)[0][0] > 2
    empty = fit(np.array([0]), np.array([], dtype=np.int64), np.array([]), np.array([]), 3, config)
    assert empty[0].tolist() == [0.0] * 3 and empty[1] == 0.0


def test_thresholds_come_from_precision_on_out_of_fold_scores() -> None:
    from detectors.training import Example

    examples = [Example(f"p{i}", True, "indomain", 0) for i in range(10)]
    examples += [Example(f"n{i}", False, "indomain", 0) for i in range(10)]
    examples += [Example(f"j{i}", False, "jddc", 0) for i in range(1000)]
    scores = np.array([0.9] * 8 + [0.4] * 2 + [0.5] * 2 + [0.1] * 8 + [0.6] + [0.05] * 999)
    review, alert, dev = choose_thresholds(examples, scores, TrainConfig(review_precision=0.6, max_false_alarms=0.5))
    assert alert == pytest.approx(0.61)  # above the one JDDC message at 0.6 and the negatives at 0.5
    assert dev["alert_precision"] == 1.0 and dev["alert_recall"] == pytest.approx(0.8)
    assert review == pytest.approx(0.11)  # lowest with precision ≥ 0.6: above the eight negatives at 0.1
    assert review <= alert
    # a per-label floor keeps that label's alert threshold above it; other labels are not affected
    config = TrainConfig(review_precision=0.6, max_false_alarms=0.5, min_alert_by_label={"conflict": 0.7})
    assert choose_thresholds(examples, scores, config, label="conflict")[1] == pytest.approx(0.71)
    assert choose_thresholds(examples, scores, config, label="deflection")[1] == pytest.approx(0.61)


def test_thresholds_judge_the_model_by_what_it_adds_to_the_rules() -> None:
    from detectors.training import Example

    # the rules catch five positives and (wrongly) two negatives; the model alone speaks on the rest
    examples = [Example(f"p{i}", True, "indomain", 0) for i in range(10)]
    examples += [Example(f"n{i}", False, "indomain", 0) for i in range(10)]
    ruled = [i < 5 for i in range(10)] + [i >= 8 for i in range(10)]
    scores = np.array([0.9] * 10 + [0.1] * 8 + [0.95] * 2)
    _, alert, dev = choose_thresholds(examples, scores, TrainConfig(alert_precision=0.95), ruled)
    assert alert == pytest.approx(0.11)  # above the negatives the rules missed: the model adds 5 and nothing false
    assert dev["alert_model_precision"] == 1.0 and dev["alert_recall"] == 1.0
    assert dev["alert_precision"] == pytest.approx(10 / 12)  # the rules' two false alarms stay in the figure
    # a negative the rules missed, scored high by the model, does hold the threshold up
    scores[15] = 0.95
    _, alert, dev = choose_thresholds(examples, scores, TrainConfig(alert_precision=0.95), ruled)
    assert alert == pytest.approx(0.96) and dev["alert_model_precision"] == 1.0


def synthetic_model(tmp_path: Path) -> Path:
    document = {"format": FORMAT, "orders": [1, 2, 3], "labels": {
        "conflict": {"sender": "agent", "bias": -4.0, "weights": {"橙子": 3.0, "香蕉": 2.0, "西瓜": 4.5}},
        "customer_anger": {"sender": "customer", "bias": -4.0, "weights": {"榴莲": 7.0}},
    }}
    path = tmp_path / "weights.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def detector_with(tmp_path: Path, model: dict[str, Any]) -> Detector:
    document = load_document(SEED_PATH)
    document["model"] = model
    return Detector(parse_ruleset(document), model_path=synthetic_model(tmp_path))


def test_review_and_alert_thresholds(tmp_path: Path) -> None:
    detector = detector_with(tmp_path, {"conflict": {"review": 0.5, "alert": 0.9}})
    # made-up weights on fruit, so no rule interferes. 橙子 + 香蕉: −4 + 3 + 2 = 1 → 0.73, between review and alert
    text = "橙子和香蕉都有"
    assert labels_of(detector.detect(text, "agent")) == []  # counts for nothing, alerts nothing
    [review] = detector.detect(text, "agent", review=True)
    assert (review.label, review.source, review.review_only, review.alert) == ("conflict", "model", True, False)
    assert review.score == pytest.approx(1 / (1 + np.exp(-1.0)), abs=1e-4)
    assert review.evidence == ("橙子", "香蕉")  # heaviest first
    assert (review.start, review.end, review.matched) == (0, len(text), text)
    # 西瓜 + 橙子: −4 + 4.5 + 3 = 3.5 → 0.97, over the alert threshold
    [alert] = detector.detect("西瓜和橙子", "agent")
    assert (alert.source, alert.review_only, alert.alert, alert.fatal) == ("model", False, True, False)
    assert alert.score is not None and alert.score > 0.9
    assert detector.detect("您好，请稍等", "agent", review=True) == []


def test_the_model_does_not_repeat_what_the_rules_found(tmp_path: Path) -> None:
    detector = detector_with(tmp_path, {"conflict": {"review": 0.1, "alert": 0.2}})
    found = detector.detect("爱买不买，橙子西瓜", "agent", review=True)
    assert [(f.label, f.source) for f in found] == [("conflict", "rule")]


def test_thresholds_and_switches_are_rule_set_data_per_shop(tmp_path: Path) -> None:
    document = load_document(SEED_PATH)
    document["model"] = {"conflict": {"review": 0.5, "alert": 0.9}, "customer_anger": {"review": 0.5, "alert": 0.9}}
    document["shops"] = {"quiet": {"model": {"conflict": {"enabled": False}}},
                         "eager": {"model": {"conflict": {"alert": 0.6}}}}
    ruleset = parse_ruleset(document)
    path = synthetic_model(tmp_path)
    text = "橙子和香蕉都有"  # 0.73
    assert labels_of(Detector(ruleset.for_shop("eager"), model_path=path).detect(text, "agent")) == ["conflict"]
    assert Detector(ruleset.for_shop("quiet"), model_path=path).detect(text, "agent", review=True) == []
    assert Detector(ruleset.for_shop("quiet"), model_path=path).detect("我要榴莲", "customer")[0].source == "model"
    off = {**document, "model": {"enabled": False}}
    assert Detector(parse_ruleset(off), model_path=path).detect("西瓜和橙子", "agent", review=True) == []


def test_a_missing_weights_file_leaves_the_rules_working(tmp_path: Path) -> None:
    detector = Detector(load_ruleset(), model_path=tmp_path / "absent.json")
    assert labels_of(detector.detect("爱买不买", "agent")) == ["conflict"]
    assert detector.opinions("爱买不买", "agent") == []


def test_the_shipped_weights_load_and_score_deterministically() -> None:
    model = load_model(MODEL_PATH)
    assert model is not None, "detectors/models/second_opinion.json is a build product of `zhijian train`"
    assert set(model.labels) == {"conflict", "deflection", "customer_anger"}
    assert MODEL_PATH.stat().st_size <= 3 * 1024 * 1024
    book = RuleBook(load_ruleset())
    first = [f.as_dict() for f in book.detect("您这理解能力，我真是服了", "agent", review=True)]
    again = [f.as_dict() for f in RuleBook(load_ruleset()).detect("您这理解能力，我真是服了", "agent", review=True)]
    assert first == again


def test_seed_thresholds_match_the_training_report() -> None:
    report = MODEL_PATH.with_suffix(".md").read_text(encoding="utf-8")
    seed = load_ruleset().model
    for label in ("conflict", "deflection", "customer_anger"):
        line = f"{label} = {{ review = {seed[label]['review']:.2f}, alert = {seed[label]['alert']:.2f} }}"
        assert line in report, label


def test_source_weights_can_differ_per_label() -> None:
    from detectors.training import Example, _weights

    examples = [Example("a", True, "cold", -1), Example("b", False, "jddc", 0), Example("c", True, "indomain", 0)]
    config = TrainConfig(positive_weight=4.0, source_weights_by_label={"customer_anger": {"cold": 0.02}})
    assert list(_weights(examples, config, "customer_anger")) == pytest.approx([0.02, 0.5, 4.0])
    assert list(_weights(examples, config, "conflict")) == pytest.approx([0.005, 0.5, 4.0])


def test_jddc_messages_a_reviewer_marked_are_positives_or_left_out(tmp_path: Path) -> None:
    from detectors.evaluation import jddc_digest, read_reviewed
    from detectors.training import build_examples

    jddc = [("customer", "到底什么时候发货，说了三次了"), ("customer", "好的谢谢"), ("customer", "这个算不算坏了"),
            ("agent", "到底什么时候发货，说了三次了")]
    (tmp_path / "jddc_reviewed.jsonl").write_text("\n".join(json.dumps(row) for row in [
        {"digest": jddc_digest(jddc[0][1]), "label": "customer_anger", "verdict": "positive"},
        {"digest": jddc_digest(jddc[2][1]), "label": "customer_anger", "verdict": "unsure"},
        {"digest": jddc_digest(jddc[1][1]), "label": "conflict", "verdict": "positive"},  # another label's
    ]) + "\n", encoding="utf-8")
    reviewed = read_reviewed(tmp_path, "customer_anger")
    examples = build_examples("customer_anger", [], jddc, [], NORMALISE, TrainConfig(), reviewed)
    assert [(e.raw, e.positive) for e in examples] == [(jddc[0][1], True), (jddc[1][1], False)]
    # the reviewed positive is no false alarm: a threshold it passes is not held up by it
    scores = np.array([0.9, 0.1])
    _, alert, dev = choose_thresholds(examples, scores, TrainConfig(max_false_alarms=0.5))
    assert alert == pytest.approx(0.11) and dev["alert_jddc_per_1k"] == 0.0  # above the negative only
    # and it weighs like an in-domain positive
    from detectors.training import _weights
    assert list(_weights(examples, TrainConfig(positive_weight=4.0))) == pytest.approx([2.0, 0.5])
    assert read_reviewed(tmp_path / "nowhere", "customer_anger") == {}
