"""The rule set as data: loading, validation, shop profiles, per-shop overrides, versions.

A rule set is one document (TOML on disk, JSON on the wire and in the database). The seed
defaults live in ``detectors/rulesets/seed.toml``. Named presets live under ``profiles`` and
shops under ``shops``; both use the same override shape:

    default_profile = "tmall"         # shops without a profile of their own

    [profiles.jd]                     # a preset: any override fields
    [[profiles.jd.rules]]
    id = "banned_word.modal_particle"
    remove_terms = ["哦", "嗯"]

    [shops."shop-7"]
    profile = "jd"                    # the preset first, then the shop's own overrides on top
    disable = ["impolite_address.ni"]
    [[shops."shop-7".rules]]          # an existing id: change fields, add or remove terms
    id = "banned_word.modal_particle"
    remove_terms = ["哦"]
    [[shops."shop-7".rules]]          # a new id: a complete rule of the shop's own
    id = "forbidden_phrase.shop7"
    label = "forbidden_phrase"
    terms = ["自己看详情页"]

Override fields: ``disable``, ``rules``, ``conversation``, ``timing``, ``rubric`` (top-level keys
replaced) and ``model`` (merged per label).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from detectors.findings import SEVERITIES
from detectors.rubric import parse_rubric
from detectors.sound import sound_of
from detectors.timing_policy import parse_timing
from detectors.validators import VALIDATORS

MESSAGE_LABELS = (
    "banned_word", "impolite_address", "forbidden_phrase", "conflict", "deflection", "pii_leak", "customer_anger",
)
CONVERSATION_LABELS = ("missing_greeting", "missing_closing", "politeness_rate")
LABELS = MESSAGE_LABELS + CONVERSATION_LABELS
SENDERS = ("agent", "customer")
SEED_PATH = Path(__file__).with_name("rulesets") / "seed.toml"


class RuleSetError(ValueError):
    """The document is not a valid rule set; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    label: str
    applies_to: str = "agent"
    severity: str = "warning"
    fatal: bool = False
    alert: bool = True
    throttle_s: float = 300.0
    enabled: bool = True
    terms: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # patterns run only if one of these occurs in the text
    requires_pattern: str | None = None  # ... or if this cheap regular expression matches
    validator: str | None = None
    context_exceptions: tuple[str, ...] = ()
    context_chars: int = 8
    sound_terms: tuple[str, ...] = ()  # also matched by sound: homophones and pinyin (detectors/sound.py)
    gap_chars: int = 6  # a term written 自己去…看 allows up to this many characters (within a clause) at …
    quoted_ok: bool = False  # a hit inside quotation marks or 《》 is a quote, not a violation
    # a context exception counts only if no ``context_keep`` word stands nearer the hit (订单上的联系人…，手机138…)
    context_keep: tuple[str, ...] = ()
    context_after: tuple[str, ...] = ()  # words that cancel a hit when they follow it (…88号，售后部收)
    # the agent reading the buyer's own data back to the buyer (跟您核对一下…，对吗): when ``readback_pattern``
    # matches the message and ``third_party_pattern`` does not (他/她/对方/家人…), the rule's hits are dropped
    readback_pattern: str | None = None
    third_party_pattern: str | None = None
    hanzi_digits: bool = False  # patterns also see Chinese numerals as digits (一三九 二七五六 … reads 139 2756 …)


@dataclass(frozen=True, slots=True)
class PhraseCheck:
    label: str
    phrases: tuple[str, ...]
    severity: str = "info"
    alert: bool = False
    window: int = 2  # the first (greeting) or last (closing) agent messages searched
    exceptions: tuple[str, ...] = ()
    tiers: tuple[tuple[float, int], ...] = ()  # politeness only: (minimum share, points), best first


@dataclass(frozen=True, slots=True)
class ConversationRules:
    greeting: PhraseCheck
    closing: PhraseCheck
    politeness: PhraseCheck


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str
    revision: int
    rules: tuple[Rule, ...]
    conversation: ConversationRules
    variants: Mapping[str, str] = field(default_factory=dict)
    shops: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    timing: Mapping[str, Any] = field(default_factory=dict)  # response-time policy (stream.timing reads it)
    rubric: Mapping[str, Any] = field(default_factory=dict)  # the scorecard (zhijian.scoring reads it)
    model: Mapping[str, Any] = field(default_factory=dict)  # the learned second opinion: labels and thresholds
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_profile: str = ""
    profile: str = ""  # the profile this (per-shop) rule set was built with; "" for none
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def digest(self) -> str:
        """A short hash of the document: two workers with the same digest apply the same rules."""
        canonical = json.dumps(self.document, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.blake2b(canonical, digest_size=6).hexdigest()

    def rule(self, rule_id: str) -> Rule | None:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None

    def profile_of(self, shop_id: str | None) -> str:
        """The profile a shop uses: its own ``profile``, else ``default_profile`` ("" for none)."""
        override = self.shops.get(shop_id or "") or {}
        return str(override.get("profile") or self.default_profile)

    def for_shop(self, shop_id: str | None) -> RuleSet:
        """This rule set with the shop's profile and then its own overrides applied."""
        override = self.shops.get(shop_id or "") or {}
        name = self.profile_of(shop_id)
        own = {key: value for key, value in override.items() if key != "profile"}
        if not name and not own:
            return self
        result = self
        if name:
            result = _apply_override(result, f"profiles.{name}", self.profiles[name])
        if own:
            result = _apply_override(result, f"shops.{shop_id}", own)
        return replace(result, profile=name, profiles={}, default_profile="")

    def for_profile(self, name: str) -> RuleSet:
        """This rule set under one profile, as a shop with that profile and no overrides sees it."""
        if name not in self.profiles:
            raise RuleSetError(f"no profile {name!r} (known: {', '.join(self.profiles) or 'none'})")
        return replace(_apply_override(self, f"profiles.{name}", self.profiles[name]), profile=name, profiles={},
                       default_profile="")

    def to_json(self) -> bytes:
        return json.dumps(self.document, ensure_ascii=False, sort_keys=True).encode()


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise RuleSetError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def _check_regex(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RuleSetError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None


_RULE_FIELDS = {f for f in Rule.__dataclass_fields__}
_LIST_FIELDS = {"terms", "exceptions", "patterns", "requires", "context_exceptions", "sound_terms", "context_keep",
                "context_after"}
SLOTS = {"{你}": ("你", "您")}  # a term written {你}有病 stands for 你有病 and 您有病
GAP = "…"


def expand_slots(word: str) -> list[str]:
    """The words a term with slots stands for (itself if it has none)."""
    words = [word]
    for slot, fillers in SLOTS.items():
        words = [w.replace(slot, filler, 1) for w in words for filler in fillers] if slot in word else words
        while any(slot in w for w in words):
            words = [w.replace(slot, filler, 1) for w in words for filler in fillers]
    return words


def parse_rule(raw: Mapping[str, Any], where: str) -> Rule:
    unknown = set(raw) - _RULE_FIELDS - {"description"}
    if unknown:
        raise RuleSetError(f"{where}: unknown field(s) {sorted(unknown)}")
    if not isinstance(raw.get("id"), str) or not raw["id"]:
        raise RuleSetError(f"{where}: every rule needs an id")
    where = f"rule {raw['id']!r}"
    values: dict[str, Any] = {k: v for k, v in raw.items() if k in _RULE_FIELDS}
    for name in _LIST_FIELDS & set(values):
        values[name] = _strings(values[name], f"{where}.{name}")
    rule = Rule(**values)
    if rule.label not in MESSAGE_LABELS:
        raise RuleSetError(f"{where}: label {rule.label!r} is not one of {', '.join(MESSAGE_LABELS)}")
    if rule.applies_to not in SENDERS:
        raise RuleSetError(f"{where}: applies_to must be one of {SENDERS}")
    if rule.severity not in SEVERITIES:
        raise RuleSetError(f"{where}: severity must be one of {SEVERITIES}")
    if rule.validator is not None and rule.validator not in VALIDATORS:
        raise RuleSetError(f"{where}: unknown validator {rule.validator!r} (known: {', '.join(VALIDATORS)})")
    if not (rule.terms or rule.patterns or rule.sound_terms):
        raise RuleSetError(f"{where}: a rule needs terms, sound_terms or patterns")
    if not isinstance(rule.gap_chars, int) or not 0 < rule.gap_chars <= 20:
        raise RuleSetError(f"{where}: gap_chars must be an integer from 1 to 20")
    for term in rule.terms:
        if GAP in term and (term.startswith(GAP) or term.endswith(GAP) or GAP * 2 in term):
            raise RuleSetError(f"{where}: {term!r}: … stands between two parts of a phrase")
    for term in rule.sound_terms:
        if any(sound_of(word) is None for word in expand_slots(term)):
            raise RuleSetError(f"{where}.sound_terms: {term!r} is not two or more Chinese syllables")
    if not isinstance(rule.throttle_s, int | float) or rule.throttle_s < 0:
        raise RuleSetError(f"{where}: throttle_s must be a number ≥ 0")
    if rule.third_party_pattern and not rule.readback_pattern:
        raise RuleSetError(f"{where}: third_party_pattern only qualifies a readback_pattern")
    optional = (rule.requires_pattern, rule.readback_pattern, rule.third_party_pattern)
    for pattern in (*rule.patterns, *(p for p in optional if p)):
        _check_regex(pattern, where)
    return rule


def _phrase_check(raw: Any, where: str, *, label: str, window_key: str | None) -> PhraseCheck:
    if not isinstance(raw, Mapping):
        raise RuleSetError(f"{where}: missing")
    if raw.get("label", label) != label:
        raise RuleSetError(f"{where}: label must be {label!r}")
    tiers: tuple[tuple[float, int], ...] = ()
    if "tiers" in raw:
        try:
            tiers = tuple((float(share), int(points)) for share, points in raw["tiers"])
        except (TypeError, ValueError):
            raise RuleSetError(f"{where}.tiers: expected a list of [share, points] pairs") from None
    severity = raw.get("severity", "info")
    if severity not in SEVERITIES:
        raise RuleSetError(f"{where}: severity must be one of {SEVERITIES}")
    return PhraseCheck(
        label=label, phrases=_strings(raw.get("phrases"), f"{where}.phrases"), severity=severity,
        alert=bool(raw.get("alert", False)), window=int(raw.get(window_key, 2)) if window_key else 0,
        exceptions=_strings(raw.get("exceptions"), f"{where}.exceptions"), tiers=tiers,
    )


def parse_ruleset(document: Mapping[str, Any]) -> RuleSet:
    """Validate a rule-set document and build the rule set. Raises :class:`RuleSetError`."""
    if not isinstance(document, Mapping):
        raise RuleSetError("a rule set is a JSON object / TOML table")
    if document.get("schema", 1) != 1:
        raise RuleSetError(f"unsupported schema {document.get('schema')!r} (this version reads schema 1)")
    version, revision = document.get("version"), document.get("revision", 0)
    if not isinstance(version, str) or not version:
        raise RuleSetError("version: a non-empty string is required")
    if not isinstance(revision, int) or revision < 0:
        raise RuleSetError("revision: a non-negative integer is required")
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list):
        raise RuleSetError("rules: expected a list of rules")
    rules = tuple(parse_rule(raw, f"rules[{index}]") for index, raw in enumerate(raw_rules))
    ids = [rule.id for rule in rules]
    duplicated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
    if duplicated:
        raise RuleSetError(f"rules: duplicate id(s) {duplicated}")
    conv = document.get("conversation") or {}
    conversation = ConversationRules(
        greeting=_phrase_check(conv.get("greeting"), "conversation.greeting", label="missing_greeting",
                               window_key="within_first"),
        closing=_phrase_check(conv.get("closing"), "conversation.closing", label="missing_closing",
                              window_key="within_last"),
        politeness=_phrase_check(conv.get("politeness"), "conversation.politeness", label="politeness_rate",
                                 window_key=None),
    )
    variants = dict((document.get("normalise") or {}).get("variants") or {})
    if not all(isinstance(k, str) and isinstance(v, str) and len(k) == 1 for k, v in variants.items()):
        raise RuleSetError("normalise.variants: map single characters to strings")
    shops = document.get("shops") or {}
    if not isinstance(shops, Mapping) or not all(isinstance(v, Mapping) for v in shops.values()):
        raise RuleSetError("shops: expected a table of tables keyed by shop_id")
    profiles = document.get("profiles") or {}
    if not isinstance(profiles, Mapping) or not all(isinstance(v, Mapping) for v in profiles.values()):
        raise RuleSetError("profiles: expected a table of tables keyed by profile name")
    for name, preset in profiles.items():
        if "profile" in preset:
            raise RuleSetError(f"profiles.{name}: a profile cannot name another profile")
    default_profile = document.get("default_profile", "")
    if not isinstance(default_profile, str) or (default_profile and default_profile not in profiles):
        raise RuleSetError(f"default_profile: no profile {default_profile!r} (known: {', '.join(profiles) or 'none'})")
    for shop_id, override in shops.items():
        chosen = override.get("profile")
        if chosen is not None and (not isinstance(chosen, str) or chosen not in profiles):
            known = ", ".join(profiles) or "none"
            raise RuleSetError(f"shops.{shop_id}.profile: no profile {chosen!r} (known: {known})")
    model = document.get("model") or {}
    if not isinstance(model, Mapping):
        raise RuleSetError("model: expected a table")
    timing = document.get("timing") or {}
    if not isinstance(timing, Mapping):
        raise RuleSetError("timing: expected a table")
    rubric = document.get("rubric") or {}
    if not isinstance(rubric, Mapping):
        raise RuleSetError("rubric: expected a table")
    ruleset = RuleSet(version=version, revision=revision, rules=rules, conversation=conversation,
                      variants=variants, shops=shops, timing=timing, rubric=rubric, model=model, profiles=profiles,
                      default_profile=default_profile, document=document)
    # validate every profile and override now, not on the first message of that shop
    variants_to_check = [("", ruleset.for_shop(None))]
    variants_to_check += [(f" of profile {name}", ruleset.for_profile(name)) for name in profiles]
    variants_to_check += [(f" of shop {shop_id}", ruleset.for_shop(shop_id)) for shop_id in shops]
    for where, shop_rules in variants_to_check:
        for section, parse in (("timing", parse_timing), ("rubric", parse_rubric), ("model", parse_model)):
            raw = getattr(shop_rules, section)
            if section in ("rubric", "model") and not raw:
                continue  # no scorecard (model settings) in this document: the seed's applies
            try:
                parse(raw)
            except (TypeError, ValueError, KeyError) as exc:
                raise RuleSetError(f"{section}{where}: {exc}") from None
    return ruleset


MODEL_LABELS = ("conflict", "customer_anger", "deflection")


@dataclass(frozen=True, slots=True)
class ModelLabel:
    """The learned second opinion for one label: off, or two thresholds on its probability."""

    label: str
    enabled: bool = True
    review: float = 0.5  # from here: a finding for the QA review queue only (no score, no alert)
    alert: float = 0.9  # from here: a live alert that counts like a rule finding
    severity: str = "warning"


def parse_model(raw: Mapping[str, Any]) -> dict[str, ModelLabel]:
    """``[model]``: ``enabled`` for all labels, and per label ``enabled``, ``review``, ``alert``, ``severity``."""
    unknown = set(raw) - {"enabled", *MODEL_LABELS}
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)} (labels: {', '.join(MODEL_LABELS)})")
    enabled_all = raw.get("enabled", True)
    if not isinstance(enabled_all, bool):
        raise ValueError("enabled: true or false")
    result: dict[str, ModelLabel] = {}
    for label in MODEL_LABELS:
        settings = raw.get(label) or {}
        if not isinstance(settings, Mapping):
            raise ValueError(f"{label}: expected a table")
        extra = set(settings) - {"enabled", "review", "alert", "severity"}
        if extra:
            raise ValueError(f"{label}: unknown key(s) {sorted(extra)}")
        entry = ModelLabel(label, **{k: v for k, v in settings.items()})
        if not isinstance(entry.enabled, bool):
            raise ValueError(f"{label}.enabled: true or false")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (entry.review, entry.alert)):
            raise ValueError(f"{label}: review and alert are numbers")
        if not 0.0 <= entry.review <= entry.alert <= 1.0:
            raise ValueError(f"{label}: need 0 ≤ review ≤ alert ≤ 1 (got {entry.review}, {entry.alert})")
        if entry.severity not in SEVERITIES:
            raise ValueError(f"{label}.severity must be one of {SEVERITIES}")
        result[label] = replace(entry, enabled=entry.enabled and enabled_all)
    return result


_OVERRIDE_KEYS = {"profile", "description", "disable", "rules", "conversation", "timing", "rubric", "model"}


def _apply_override(base: RuleSet, where: str, override: Mapping[str, Any]) -> RuleSet:
    """``override`` (a profile or a shop's own block, named by ``where``) applied to ``base``."""
    unknown = set(override) - _OVERRIDE_KEYS
    if unknown:
        raise RuleSetError(f"{where}: unknown key(s) {sorted(unknown)} (known: {', '.join(sorted(_OVERRIDE_KEYS))})")
    disabled = set(_strings(override.get("disable"), f"{where}.disable"))
    unknown = disabled - {rule.id for rule in base.rules}
    if unknown:
        raise RuleSetError(f"{where}.disable: no such rule(s) {sorted(unknown)}")
    rules = {rule.id: rule for rule in base.rules if rule.id not in disabled}
    for index, patch in enumerate(override.get("rules") or []):
        spot = f"{where}.rules[{index}]"
        if not isinstance(patch, Mapping) or not isinstance(patch.get("id"), str):
            raise RuleSetError(f"{spot}: every override names a rule id")
        current = rules.get(patch["id"])
        if current is None:
            rules[patch["id"]] = parse_rule(patch, spot)
            continue
        merged = asdict(current)
        for name, value in patch.items():
            if name.startswith(("add_", "remove_")):
                op, _, target = name.partition("_")
                if target not in _LIST_FIELDS:
                    raise RuleSetError(f"{spot}: cannot {op} to {target!r}")
                items = _strings(value, f"{spot}.{name}")
                existing = list(merged[target])
                merged[target] = existing + [i for i in items if i not in existing] if op == "add" else [
                    i for i in existing if i not in items
                ]
            elif name != "id":
                merged[name] = value
        merged = {k: list(v) if isinstance(v, tuple) else v for k, v in merged.items()}
        if merged["terms"] == [] and not merged["patterns"] and not merged["sound_terms"]:
            merged["enabled"] = False  # every term removed (a shop that allows all particles)
            merged["terms"] = list(current.terms)
        rules[patch["id"]] = parse_rule(merged, spot)
    conversation = base.conversation
    for key, label in (("greeting", "missing_greeting"), ("closing", "missing_closing"),
                       ("politeness", "politeness_rate")):
        patch = (override.get("conversation") or {}).get(key)
        if patch:
            current_check: PhraseCheck = getattr(conversation, key)
            fields: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v)
                                      for k, v in patch.items() if k in PhraseCheck.__dataclass_fields__}
            changed = replace(current_check, **fields)
            if changed.label != label:
                raise RuleSetError(f"{where}.conversation.{key}: label must stay {label!r}")
            conversation = replace(conversation, **{key: changed})
    for section in ("timing", "rubric", "model"):
        if not isinstance(override.get(section) or {}, Mapping):
            raise RuleSetError(f"{where}.{section}: expected a table")
    timing = {**base.timing, **(override.get("timing") or {})}
    rubric = {**base.rubric, **(override.get("rubric") or {})}
    model = dict(base.model)
    for key, value in (override.get("model") or {}).items():  # per label: only the fields named change
        current = model.get(key)
        model[key] = {**current, **value} if isinstance(current, Mapping) and isinstance(value, Mapping) else value
    return replace(base, rules=tuple(rules.values()), conversation=conversation, shops={}, timing=timing,
                   rubric=rubric, model=model)


def load_document(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        loaded: dict[str, Any] = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RuleSetError(f"{path}: {exc}") from None
    return loaded


def load_ruleset(path: Path | None = None) -> RuleSet:
    """The rule set in ``path`` (TOML or JSON), or the seed defaults."""
    return parse_ruleset(load_document(path or SEED_PATH))


def with_revision(document: Mapping[str, Any], revision: int, version: str | None = None) -> dict[str, Any]:
    updated = dict(document)
    updated["revision"] = revision
    updated["version"] = version or f"r{revision}"
    return updated


def labels_of(findings: Sequence[Any]) -> list[str]:
    """Label names in first-seen order, each once."""
    seen: list[str] = []
    for finding in findings:
        if finding.label not in seen:
            seen.append(finding.label)
    return seen
