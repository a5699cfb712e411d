"""Shop profiles: named presets in the rule-set document, chosen per shop, overridden per shop."""

from __future__ import annotations

from typing import Any

import pytest

from detectors import RuleBook, RuleSetError, load_ruleset, parse_ruleset
from detectors.ruleset import SEED_PATH, labels_of, load_document
from zhijian.scoring import rubric_lookup, score_summary

SEED = load_ruleset()


def conversation_score(book: RuleBook, shop: str, agent_texts: list[str]) -> Any:
    """Score a conversation of these agent messages for ``shop`` the way the worker does."""
    transcript = [{"message_id": f"m{i}", "text": text, "ts_ms": i * 1000, "agent_id": "a1"}
                  for i, text in enumerate(agent_texts)]
    findings = [{"message_id": m["message_id"], **f.as_dict()}
                for m in transcript for f in book.detect(m["text"], "agent", shop)]
    labels: dict[str, int] = {}
    for finding in findings:  # what the worker counts per conversation
        labels[finding["label"]] = labels.get(finding["label"], 0) + 1
    summary = {"conversation_id": "c1", "transcript": transcript, "findings": findings, "labels": labels,
               "closed_ms": 10_000}
    return score_summary(summary, rubric_lookup(book)(shop))


def test_seed_profiles_and_demo_shops() -> None:
    assert set(SEED.profiles) >= {"tmall", "jd", "telecom"}
    assert SEED.default_profile == "tmall"
    assert SEED.for_shop("shop-jd-02").profile == "jd"
    assert SEED.for_shop("shop-tmall-01").profile == "tmall"
    assert SEED.for_shop("a-shop-nobody-configured").profile == "tmall"


def test_a_lone_particle_is_fatal_for_a_strict_shop_but_not_under_jd() -> None:
    book = RuleBook(SEED)
    texts = ["您好，很高兴为您服务", "好的哦，已经为您登记", "感谢您的耐心，祝您生活愉快"]
    strict = conversation_score(book, "shop-tmall-01", texts)
    assert strict.fatal and strict.score == 0 and strict.fatal_labels == ["banned_word"]
    jd = conversation_score(book, "shop-jd-02", texts)
    assert not jd.fatal and jd.score == 100
    assert labels_of(book.detect("嗯嗯，好的哦，啊这个有的", "agent", "shop-jd-02")) == []
    # the rarer particles stay a finding under jd, but a warning that neither alerts nor zeroes the score
    found = book.detect("喂，在吗", "agent", "shop-jd-02")
    assert [(f.label, f.fatal, f.severity, f.alert) for f in found] == [("banned_word", False, "warning", False)]
    assert not conversation_score(book, "shop-jd-02", ["您好", "喂，您还在吗", "感谢您，再见"]).fatal
    # what jd does not tolerate stays fatal
    refusal = conversation_score(book, "shop-jd-02", ["您好", "这个我不知道", "感谢您，再见"])
    assert refusal.fatal and refusal.fatal_labels == ["forbidden_phrase"]


def test_telecom_allows_the_phone_greeting_and_counts_a_work_number_as_greeting() -> None:
    document = load_document(SEED_PATH)
    document["shops"] = {"hotline": {"profile": "telecom"}}
    book = RuleBook(parse_ruleset(document))
    assert labels_of(book.detect("喂，您好，10000号，工号1234", "agent", "hotline")) == []
    assert labels_of(book.detect("喂，您好，10000号，工号1234", "agent", "elsewhere")) == ["banned_word"]
    assert book.detector("hotline").ruleset.conversation.greeting.phrases[-1] == "10000号"
    assert not conversation_score(book, "hotline", ["工号1234为您服务", "哦，好的", "感谢您，再见"]).fatal


def test_a_shop_overrides_on_top_of_its_profile() -> None:
    document = load_document(SEED_PATH)
    document["shops"] = {"jd-strict-ni": {"profile": "jd", "rules": [{"id": "impolite_address.ni", "alert": True}],
                                          "rubric": {"fatal_labels": ["pii_leak"]}}}
    ruleset = parse_ruleset(document)
    shop = ruleset.for_shop("jd-strict-ni")
    assert shop.profile == "jd"
    assert shop.rule("impolite_address.ni").alert is True  # the shop's own override wins
    assert "哦" not in shop.rule("banned_word.modal_particle").terms  # the profile still applies
    assert shop.rubric["fatal_labels"] == ["pii_leak"]
    assert SEED.for_shop("shop-jd-02").rule("impolite_address.ni").alert is False


def test_default_profile_applies_to_shops_without_one_and_a_shop_may_choose_another() -> None:
    document = load_document(SEED_PATH)
    document["default_profile"] = "jd"
    document["shops"] = {"strict": {"profile": "tmall"}}
    book = RuleBook(parse_ruleset(document))
    assert labels_of(book.detect("好的哦", "agent", "anyone")) == []
    assert labels_of(book.detect("好的哦", "agent", None)) == []
    assert labels_of(book.detect("好的哦", "agent", "strict")) == ["banned_word"]


def test_profile_changes_reload_live() -> None:
    book = RuleBook(SEED)
    assert labels_of(book.detect("好的哦", "agent", "shop-jd-02")) == []
    document = load_document(SEED_PATH)
    document["revision"], document["version"] = 5, "r5"
    document["profiles"]["jd"]["rules"][0]["remove_terms"] = ["嗯"]
    assert book.replace(parse_ruleset(document))
    assert labels_of(book.detect("好的哦", "agent", "shop-jd-02")) == ["banned_word"]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"default_profile": "amazon"}, "default_profile: no profile 'amazon'"),
        ({"shops": {"s": {"profile": "amazon"}}}, "shops.s.profile: no profile 'amazon'"),
        ({"profiles": {"x": {"profile": "jd"}}}, "cannot name another profile"),
        ({"profiles": {"x": {"disabel": ["impolite_address.ni"]}}}, r"profiles.x: unknown key\(s\) \['disabel'\]"),
        ({"profiles": {"x": {"disable": ["no.such.rule"]}}}, "no such rule"),
        ({"profiles": {"x": {"rubric": {"fatal_labels": ["nonsense"]}}}}, "rubric of profile x"),
        ({"profiles": "jd"}, "profiles: expected a table"),
        ({"model": {"conflict": {"review": 0.9, "alert": 0.5}}}, "review ≤ alert"),
        ({"profiles": {"x": {"model": {"conflict": {"alert": 1.5}}}}}, "model of profile x"),
    ],
)
def test_bad_profiles_are_rejected_with_a_reason(patch: dict[str, Any], message: str) -> None:
    document = load_document(SEED_PATH)
    for key, value in patch.items():
        if key == "profiles" and isinstance(value, dict):
            document["profiles"] = {**document["profiles"], **value}
        else:
            document[key] = value
    with pytest.raises(RuleSetError, match=message):
        parse_ruleset(document)
