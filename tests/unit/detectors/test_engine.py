"""The rule engine: normalisation, exceptions, spans, validators, shops, the labelled sets."""

from __future__ import annotations

import io
import json

import pytest

from detectors import Detector, RuleBook, RuleSetError, check_conversation, load_ruleset, parse_ruleset
from detectors.evaluation import DATA_DIR, evaluate_conversations, evaluate_utterances, read_jsonl
from detectors.normalise import Normaliser
from detectors.ruleset import LABELS, SEED_PATH, labels_of, load_document
from detectors.validators import id_card, luhn
from zhijian.qa_commands import detect_lines

SEED = load_ruleset()
DETECTOR = Detector(SEED)


def labels(text: str, sender: str = "agent") -> list[str]:
    return labels_of(DETECTOR.detect(text, sender))


@pytest.mark.parametrize(
    ("text", "expected", "span"),
    [
        ("你 有 病", "你有病", (0, 5)),
        ("你*有*病吧", "你有病吧", (0, 6)),
        ("妳有病嗎", "你有病吗", (0, 4)),
        ("ＱＱ号１２３", "qq号123", (0, 6)),
        ("你你你好", "你好", (0, 4)),
        ("稍等哈  给您发了", "稍等哈  给您发了", (0, 9)),  # two clauses stay apart
        ("a\u200bb你\u200b好", "ab你好", (0, 6)),
    ],
)
def test_normalisation_keeps_a_map_to_the_original(text: str, expected: str, span: tuple[int, int]) -> None:
    norm = Normaliser({"妳": "你"})(text)
    assert norm.text == expected
    assert norm.original_span(0, len(norm.text)) == span


def test_finding_spans_point_into_the_original_text() -> None:
    text = "好的，你 有 病吧！哦哦"
    findings = DETECTOR.detect(text, "agent")
    by_label = {f.label: f for f in findings}
    assert text[by_label["conflict"].start:by_label["conflict"].end] == "你 有 病吧"
    assert by_label["banned_word"].matched == "哦哦"
    assert (by_label["banned_word"].start, by_label["banned_word"].end) == (10, 12)
    assert all(f.ruleset == SEED.version for f in findings)
    assert by_label["banned_word"].fatal and by_label["banned_word"].severity == "critical"


@pytest.mark.parametrize("word", ["感恩", "恩施", "恩爱", "喂食器", "喂养", "喂奶", "迷你"])
def test_particles_and_ni_inside_words_are_not_violations(word: str) -> None:
    assert labels(f"您好，这是{word}相关的问题") == []


def test_the_same_text_from_a_customer_is_not_an_agent_violation() -> None:
    assert labels("你好，哦，我不知道", sender="customer") == []
    assert labels("我要投诉", sender="agent") == []
    assert labels("我要投诉你们", sender="customer") == ["customer_anger"]


@pytest.mark.parametrize(
    "text",
    ["您的订单13812345678已经发货", "客服热线400-606-5500", "麻烦提供手机号后四位", "您的手机138****5678",
     "请寄回退货地址：北京市大兴区物流园路1号"],
)
def test_pii_look_alikes_are_not_leaks(text: str) -> None:
    assert "pii_leak" not in labels(text)


def test_validators() -> None:
    assert luhn("4111 1111 1111 1111") and not luhn("4111 1111 1111 1112")
    assert id_card("110101199003070011") and not id_card("110101199003070012")
    assert not id_card("110101199013070011")  # month 13


def test_shop_override_allows_o_and_adds_its_own_words() -> None:
    document = load_document(SEED_PATH)
    document["shops"] = {
        "shop-jd": {
            "rules": [
                {"id": "banned_word.modal_particle", "remove_terms": ["哦"]},
                {"id": "forbidden_phrase.shop", "label": "forbidden_phrase", "terms": ["自己看详情页"],
                 "severity": "warning"},
            ],
            "disable": ["impolite_address.ni"],
        }
    }
    book = RuleBook(parse_ruleset(document))
    assert labels_of(book.detect("好的哦，你稍等", "agent", "shop-jd")) == []
    assert labels_of(book.detect("嗯，请您参考详情页", "agent", "shop-jd")) == ["banned_word"]
    assert labels_of(book.detect("这个请您看详情页", "agent", "shop-jd")) == []
    assert labels_of(book.detect("自己看详情页", "agent", "shop-jd")) == ["deflection", "forbidden_phrase"]
    assert labels_of(book.detect("好的哦，你稍等", "agent", "other-shop")) == ["banned_word", "impolite_address"]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"rules": [{"id": "x", "label": "nonsense", "terms": ["a"]}]}, "label 'nonsense'"),
        ({"rules": [{"id": "x", "label": "conflict", "patterns": ["(unclosed"]}]}, "invalid regular expression"),
        ({"rules": [{"id": "x", "label": "conflict"}]}, "needs terms, sound_terms or patterns"),
        ({"rules": [{"id": "x", "label": "conflict", "terms": ["a"], "severity": "huge"}]}, "severity"),
        ({"version": ""}, "version"),
    ],
)
def test_invalid_rule_sets_are_rejected_with_a_reason(patch: dict[str, object], message: str) -> None:
    document = dict(SEED.document)
    document.update(patch)
    with pytest.raises(RuleSetError, match=message):
        parse_ruleset(document)


def test_rulebook_installs_only_newer_revisions() -> None:
    book = RuleBook(SEED)
    newer = dict(SEED.document, revision=3, version="r3")
    newer["rules"] = [*SEED.document["rules"],
                      {"id": "conflict.extra", "label": "conflict", "terms": ["少啰嗦"], "severity": "critical"}]
    assert labels_of(book.detect("少啰嗦", "agent")) == []
    assert book.replace(parse_ruleset(newer))
    findings = book.detect("少啰嗦", "agent")
    assert labels_of(findings) == ["conflict"] and findings[0].ruleset == "r3"
    assert not book.replace(SEED)  # an older revision never wins
    assert book.ruleset.version == "r3"


def test_conversation_checks_greeting_closing_and_politeness_tiers() -> None:
    report = check_conversation(["订单号发一下", "明天到", "谢谢您，再见"], SEED)
    assert report.greeting is False and report.closing is True
    assert report.politeness_rate == pytest.approx(1 / 3, abs=1e-3)
    assert report.politeness_points == 0
    assert sorted(report.labels) == ["missing_greeting", "politeness_rate"]
    full = check_conversation(["您好，很高兴为您服务", "请您稍等", "感谢您的耐心"], SEED)
    assert full.labels == [] and full.politeness_points == 20
    four_of_five = check_conversation(["您好", "请稍等", "好的", "您看一下", "谢谢您"], SEED)
    assert four_of_five.politeness_points == 16
    assert check_conversation([], SEED).labels == []


def test_detect_command_keeps_order_and_reports_bad_lines() -> None:
    lines = io.StringIO('{"sender":"agent","text":"哦"}\nnot json\n{"sender":"robot","text":"x"}\n'
                        '{"sender":"customer","text":"差评返现是真的吗"}\n')
    out = io.StringIO()
    errors = detect_lines(RuleBook(SEED), None, lines, out)
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert errors == 2
    assert results[0]["labels"] == ["banned_word"] and results[0]["findings"][0]["matched"] == "哦"
    assert results[1]["line"] == 2 and "JSONDecodeError" in results[1]["error"]
    assert results[2]["line"] == 3
    assert results[3] == {"labels": [], "findings": [], "ruleset": SEED.version}


def test_labelled_sets_are_big_enough_and_cover_every_label_with_hard_negatives() -> None:
    samples = read_jsonl(DATA_DIR / "eval_utterances.jsonl")
    assert len(samples) >= 300
    message_labels = [label for label in LABELS if label not in ("missing_greeting", "missing_closing",
                                                                  "politeness_rate")]
    for label in message_labels:
        positives = [s for s in samples if label in s["labels"]]
        sender = "customer" if label == "customer_anger" else "agent"
        negatives = [s for s in samples if label not in s["labels"] and s["sender"] == sender]
        assert len(positives) >= 20, label
        assert len(negatives) >= 20, label


# Floors: the tuned set must stay near perfect; the held-out set was written after the rules
# and never tuned against, so its floors are lower (see the closing note of the detectors issue).
# It has 4-6 positives per label, so one finding moves precision by 0.1-0.2: with the mini-batch model
# conflict is 5/7 there (the model also flags 我下班了, a forbidden phrase, and 行吧哦，那就这样) and
# deflection 5/7 (他的电话…你打一下, 售后电话400-…), against 0.8 before; the frozen splits, 50 times larger,
# gained precision and recall with it (README, detection).
@pytest.mark.parametrize(
    ("file", "precision", "recall"),
    [("eval_utterances.jsonl", 0.95, 0.95), ("eval_holdout.jsonl", 0.7, 0.75)],
)
def test_precision_and_recall_floors(file: str, precision: float, recall: float) -> None:
    scores = evaluate_utterances(read_jsonl(DATA_DIR / file), RuleBook(SEED))
    for label, s in scores.items():
        if s.support:
            assert s.precision >= precision, (label, s.false_positives)
            assert s.recall >= recall, (label, s.misses)


def test_conversation_level_floors() -> None:
    scores = evaluate_conversations(read_jsonl(DATA_DIR / "eval_conversations.jsonl"), RuleBook(SEED))
    for label in ("missing_greeting", "missing_closing", "politeness_rate"):
        assert scores[label].support >= 3
        assert scores[label].precision >= 0.9 and scores[label].recall >= 0.9, label


@pytest.mark.parametrize(("text", "sender", "expected"), [
    ("您是复读机吗，一个问题问八遍", "agent", ["conflict"]),
    ("想退款？门都没有", "agent", ["conflict"]),
    ("补偿？想得美", "agent", ["conflict"]),
    ("请您自重，别再发了", "agent", ["conflict"]),
    ("我们庙小，伺候不起", "agent", ["conflict"]),
    ("三块钱补偿，打发叫花子呢", "customer", ["customer_anger"]),
    ("快递说找你们，你们说找快递，踢皮球是吧", "customer", ["customer_anger"]),
    ("这是我网购最差的一次", "customer", ["customer_anger"]),
    # the same words quoted, negated or harmless
    ("您说的“门都没有”不是我们的回复，我们向您道歉", "agent", []),
    ("我们不会踢皮球，这次我负责到底", "agent", []),
    ("您不用想得太复杂，我帮您办", "agent", []),
])
def test_issue_13_paraphrases(text: str, sender: str, expected: list[str]) -> None:
    assert labels(text, sender) == expected
