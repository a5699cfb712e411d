"""Harder normalisation and matching: pinyin, homophones, punctuation joins, slots, gaps, quotes, offsets."""

from __future__ import annotations

import pytest

from detectors import Detector, RuleSetError, load_ruleset, parse_ruleset
from detectors.normalise import Normaliser
from detectors.ruleset import SEED_PATH, expand_slots, labels_of, load_document
from detectors.sound import sound_of, sound_view

SEED = load_ruleset()
RULES_ONLY = Detector(parse_ruleset({**SEED.document, "model": {"enabled": False}}))


def labels(text: str, sender: str = "agent") -> list[str]:
    return labels_of(RULES_ONLY.detect(text, sender))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你.有.病", "你有病"),
        ("傻~逼", "傻逼"),
        ("你,有,病", "你有病"),
        ("你，有，病", "你有病"),  # full-width commas fold to ASCII first
        ("你-有-病吧", "你有病吧"),
        ("我要投.诉", "我要投诉"),  # a dot inside a word never separates clauses
        ("好的,您稍等", "好的,您稍等"),  # two-character neighbours: a real clause break stays
        ("好的~马上发货", "好的~马上发货"),
        ("「差评！」", "「差评!」"),
        ("ѕb", "sb"),  # Cyrillic ѕ
        ("ｓｂ", "sb"),
    ],
)
def test_punctuation_joins_and_folds(text: str, expected: str) -> None:
    assert Normaliser({})(text).text == expected


@pytest.mark.parametrize("text", ["你.有.病", "a，你 有 病！", "ＱＱ：你~有~病", "您好，这边你-有-病吧，稍等",
                                  "妳.有.病"])
def test_offsets_map_back_exactly(text: str) -> None:
    norm = Normaliser({"妳": "你"})(text)
    start = norm.text.index("你有病")
    lo, hi = norm.original_span(start, start + 3)
    assert text[lo] in "你妳" and text[hi - 1] == "病"
    assert text[lo:hi].replace(".", "").replace("~", "").replace("-", "").replace(" ", "")[1:] == "有病"


@pytest.mark.parametrize(
    ("written", "meant"),
    [("你有丙", "你有病"), ("神精病", "神经病"), ("沙比", "傻逼"), ("尼玛", "你妈"), ("草泥马", "操你妈"),
     ("辣鸡", "垃圾"), ("ni you bing", "你有病"), ("shabi", "傻逼"), ("shen jin bing", "神经病"), ("你you病", "你有病"),
     ("Ting bu dong ren hua", "听不懂人话")],
)
def test_homophones_and_pinyin_sound_alike(written: str, meant: str) -> None:
    view = sound_view(Normaliser({})(written).text)
    assert view.text == sound_of(meant)


def test_single_syllables_and_english_words_are_not_sound_terms() -> None:
    assert sound_of("蠢") is None
    assert sound_of("sb") is None
    assert sound_view("iphone 13 pro").text == "iphone 13 pro"  # not pinyin: left alone
    document = load_document(SEED_PATH)
    document["rules"][0] = {**document["rules"][0], "sound_terms": ["蠢"]}
    with pytest.raises(RuleSetError, match="two or more Chinese syllables"):
        parse_ruleset(document)


@pytest.mark.parametrize(
    ("text", "sender", "label"),
    [
        ("ni you bing吧，说了不能退", "agent", "conflict"),
        ("你有丙吧", "agent", "conflict"),
        ("神精病，别再发了", "agent", "conflict"),
        ("sb顾客，退什么退", "agent", "conflict"),
        ("cnm，烦不烦", "agent", "conflict"),
        ("脑残吧您", "agent", "conflict"),
        ("傻.逼", "agent", "conflict"),
        ("沙比商家", "customer", "customer_anger"),
        ("「差评！」", "customer", "customer_anger"),
        ("差评!", "customer", "customer_anger"),
        ("tou诉你们", "customer", "customer_anger"),
        ("骗💰的店", "customer", "customer_anger"),
    ],
)
def test_evasions_are_caught(text: str, sender: str, label: str) -> None:
    assert label in labels(text, sender)


def test_finding_spans_stay_exact_through_pinyin_and_joins() -> None:
    text = "好的，ni you bing吧"
    [finding] = [f for f in RULES_ONLY.detect(text, "agent") if f.label == "conflict"]
    assert text[finding.start:finding.end] == "ni you bing" == finding.matched
    text = "唉，你.有.病吧"
    [finding] = [f for f in RULES_ONLY.detect(text, "agent") if f.label == "conflict"]
    assert finding.matched.startswith("你.有.病")


def test_slots_and_gaps() -> None:
    assert expand_slots("{你}有病") == ["你有病", "您有病"]
    assert expand_slots("{你}说{你}的") == ["你说你的", "你说您的", "您说你的", "您说您的"]
    assert "conflict" in labels("您有病吧")
    found = RULES_ONLY.detect("你自己去详情页看吧", "agent")
    assert "deflection" in labels_of(found)
    # the gap stays inside one clause
    assert "deflection" not in labels("我们自己去仓库核对了。您看一下")


@pytest.mark.parametrize(
    "text",
    [
        "您刚才说我们“爱买不买”的态度，确实是我们沟通不到位，向您道歉",
        "这本书叫《别烦我，我在长大》，是青少年心理读物",
        "您说的“你们太慢了”我们已经反馈",
        "《你好，旧时光》第二册有货",
    ],
)
def test_quotations_and_titles_are_not_the_agents_words(text: str) -> None:
    assert labels(text) == []


@pytest.mark.parametrize(
    ("text", "sender"),
    [
        ("这款喂鸟器挂在阳台上就可以", "agent"),
        ("请寄回退货地址：北京市大兴区物流园路1号", "agent"),
        ("发货地址是浙江省金华市义乌市稠州北路1188号", "agent"),
        ("运单号YT6228480402564890011已揽收", "agent"),  # Luhn-valid digits behind a tracking prefix
        ("支付流水号4111111111111111可在银行查询", "agent"),
        ("有没有《神经病学》第八版的教材", "customer"),
    ],
)
def test_context_exceptions(text: str, sender: str) -> None:
    assert labels(text, sender) == []


def test_card_number_after_its_name_is_a_leak_even_without_luhn() -> None:
    assert "pii_leak" in labels("他的银行卡号6217002870012345678，您转账吧")
    assert "pii_leak" not in labels("京东E卡卡号6228898965130347，已发到您的邮箱")


def test_the_fast_path_and_the_offset_map_always_agree() -> None:
    """Random mixes of the hard cases: the quick text equals the mapped one, and every span maps inside."""
    import random

    normalise = Normaliser({"妳": "你", "💰": "钱"})
    pieces = ["你有病", "ni you bing", "。，！？.~-_*·", "abc ", "0123", "《》“”", "\u200b", "😡💰", "ＱＡ１", "妳妳",
              "哦嗯", "…", " \n", "é", "ﬁ", "Ⅻ", "İ"]
    rng = random.Random(5)
    for _ in range(3000):
        text = "".join(rng.choice(pieces)[rng.randrange(0, 2):] for _ in range(rng.randrange(1, 9)))
        norm = normalise(text)
        if norm.rebuild is not None:
            assert norm.rebuild().text == norm.text, text
        for i in range(len(norm.text)):
            lo, hi = norm.original_span(i, i + 1)
            assert 0 <= lo < hi <= len(text), text
