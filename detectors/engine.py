"""The matching engine: one compiled rule set, text in, findings out.

All literal terms and exception words of every rule for one sender go into one Aho-Corasick
automaton, so a message is scanned once whatever the number of rules. Regular-expression
rules run only when their cheap screen (``requires`` / ``requires_pattern``) passes. No rule
of the seed needs word segmentation: exception words settle word boundaries (感恩 for 恩,
迷你 for 你) at a fraction of jieba's cost.

A term may hold a slot ({你}有病: 你有病 and 您有病) or a gap (自己去…看: up to ``gap_chars``
characters of the same clause between the parts; the first part screens the regular
expression). ``sound_terms`` are also matched in the sound view (detectors/sound.py), a second
automaton over homophones and pinyin. Rules with ``quoted_ok`` ignore hits inside quotation
marks and 《》 (an agent quoting the customer or a title).

PII rules (``pii_leak.*``) add three things. ``context_keep``: a context exception (订单, 流水号 …)
clears a hit only if no word of the person's own data (手机, 电话, 身份证 …) stands nearer the hit,
so 订单上的联系人是王女士，手机138… is still a leak. ``readback_pattern`` / ``third_party_pattern``:
the agent reading the buyer's own data back to that buyer (跟您核对一下，您预留的电话是…，对吗) is not a
leak, unless the message speaks of someone else (他/她/对方/家人/邻居 …). ``hanzi_digits``: the
rule's patterns run on a view of the text in which Chinese numerals are digits (一三九 → 139, same
length, so spans need no map).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ahocorasick

from detectors.findings import Finding
from detectors.model import MODEL_PATH, LabelGroup, LabelModel, Opinion, load_model, quoted_spans
from detectors.normalise import Normalised, Normaliser
from detectors.ruleset import GAP, SENDERS, ModelLabel, Rule, RuleSet, expand_slots, parse_model
from detectors.sound import sound_of, sound_view
from detectors.timing_policy import parse_timing
from detectors.validators import VALIDATORS

Span = tuple[int, int]
TERM, EXCEPTION, TRIGGER = 0, 1, 2  # what an automaton word means for its rule
_CLAUSE_END = "。!?;\n"  # a gap never runs across these (after normalisation ！？； read as !?;)
HANZI_DIGITS = str.maketrans("零〇一二三四五六七八九幺", "001234567891")  # one character for one: spans stay


def gap_pattern(term: str, gap: int, normalise: Normaliser) -> tuple[str, str]:
    """(first part, regular expression) for a term with gaps: 自己去…看 → 自己去[^。!?;\n]{0,6}看."""
    parts = [normalise(part).text for part in term.split(GAP)]
    between = f"[^{re.escape(_CLAUSE_END)}]{{0,{gap}}}?"
    return parts[0], between.join(re.escape(part) for part in parts)


@dataclass(frozen=True, slots=True)
class _RegexRule:
    index: int
    patterns: tuple[re.Pattern[str], ...]
    gated: bool  # runs only if a ``requires`` word occurred or its screen matched
    screen: int  # index into _SenderRules.screens, or -1
    validator: Callable[[str], bool] | None
    digits: bool = False  # run on the view with Chinese numerals read as digits


class _SenderRules:
    """The compiled rules that apply to one sender (agent or customer)."""

    def __init__(self, rules: list[tuple[int, Rule]], normalise: Normaliser) -> None:
        words: dict[str, list[tuple[int, int]]] = {}
        gapped: dict[int, list[str]] = {}
        for index, rule in rules:
            for kind, listed in ((TERM, rule.terms), (EXCEPTION, rule.exceptions), (TRIGGER, rule.requires)):
                for term in listed:
                    for word in expand_slots(term):
                        if kind == TERM and GAP in word:
                            first, pattern = gap_pattern(word, rule.gap_chars, normalise)
                            gapped.setdefault(index, []).append(pattern)
                            words.setdefault(first, []).append((index, TRIGGER))
                        else:
                            words.setdefault(normalise(word).text, []).append((index, kind))
        self.automaton = _automaton(words)
        sounds: dict[str, list[tuple[int, int]]] = {}
        for index, rule in rules:
            for term in rule.sound_terms:
                for word in expand_slots(term):
                    sound = sound_of(normalise(word).text)
                    if sound is not None:
                        sounds.setdefault(sound, []).append((index, TERM))
        self.sound_automaton = _automaton(sounds)
        self.quoted_ok = frozenset(index for index, rule in rules if rule.quoted_ok)
        screens = sorted({rule.requires_pattern for _, rule in rules if rule.patterns and rule.requires_pattern})
        self.screens = tuple(re.compile(screen) for screen in screens)  # each runs at most once per message
        self.regex_rules = tuple(
            _RegexRule(
                index=index,
                patterns=tuple(re.compile(p) for p in rule.patterns),
                gated=bool(rule.requires or rule.requires_pattern),
                screen=screens.index(rule.requires_pattern) if rule.requires_pattern else -1,
                validator=VALIDATORS[rule.validator] if rule.validator else None,
                digits=rule.hanzi_digits,
            )
            for index, rule in rules
            if rule.patterns
        ) + tuple(
            _RegexRule(index=index, patterns=tuple(re.compile(p) for p in patterns), gated=True, screen=-1,
                       validator=None)
            for index, patterns in gapped.items()
        )
        self.digit_view = any(regex_rule.digits for regex_rule in self.regex_rules)


def _automaton(words: dict[str, list[tuple[int, int]]]) -> ahocorasick.Automaton | None:
    if not words:
        return None
    automaton = ahocorasick.Automaton()
    for word, entries in words.items():
        automaton.add_word(word, (len(word), tuple(entries)))
    automaton.make_automaton()
    return automaton


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping or touching spans become one (哦哦 spread over a run, 不知道 inside 我不知道)."""
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


class Detector:
    """A rule set compiled for matching. Immutable and safe to share between tasks.

    With ``[model]`` settings in the rule set and a weights file, the learned second opinion
    runs after the rules for the labels it knows, on messages where the rules found nothing of
    that label: from the ``alert`` threshold its finding counts and alerts like a rule's; from
    ``review`` it is returned only when asked for (``review=True``), marked ``review_only``.
    """

    def __init__(self, ruleset: RuleSet, model_path: Path = MODEL_PATH) -> None:
        self.ruleset = ruleset
        self.version = ruleset.version
        self.normalise = Normaliser(ruleset.variants)
        self.timing = parse_timing(ruleset.timing)  # this shop's response-time policy
        self.rules = tuple(rule for rule in ruleset.rules if rule.enabled)
        self._by_sender = {
            sender: _SenderRules([(i, r) for i, r in enumerate(self.rules) if r.applies_to == sender], self.normalise)
            for sender in SENDERS
        }
        self._context = tuple(
            tuple(self.normalise(word).text for word in rule.context_exceptions) for rule in self.rules
        )
        self._context_keep = tuple(
            tuple(self.normalise(word).text for word in rule.context_keep) for rule in self.rules
        )
        self._context_after = tuple(
            tuple(self.normalise(word).text for word in rule.context_after) for rule in self.rules
        )
        self._readback = tuple(
            (re.compile(rule.readback_pattern),
             re.compile(rule.third_party_pattern) if rule.third_party_pattern else None)
            if rule.readback_pattern else None
            for rule in self.rules
        )
        settings = parse_model(ruleset.model) if ruleset.model else {}
        model = load_model(model_path) if any(s.enabled for s in settings.values()) else None
        self.model_orders = model.orders if model is not None else ()
        self._grams: Callable[[str], set[str]] = model.grams if model is not None else (lambda _: set())
        self._models: dict[str, tuple[tuple[LabelModel, ModelLabel], ...]] = {
            sender: tuple((m, settings[m.label]) for m in (model.for_sender(sender) if model else ())
                          if m.label in settings and settings[m.label].enabled)
            for sender in SENDERS
        }
        self._groups = {sender: LabelGroup.of(tuple(m for m, _ in pairs)) for sender, pairs in self._models.items()}

    def detect(self, text: str, sender: str, *, review: bool = False) -> list[Finding]:
        """Findings for one message from ``sender`` ("agent" or "customer"), in text order.

        ``review``: also return the model's review-only findings (for the QA review queue).
        """
        compiled = self._by_sender.get(sender)
        if compiled is None or not text:
            return []
        norm = self.normalise(text)
        findings = self._rule_findings(text, norm, compiled)
        models = self._models[sender]
        if models:
            found = {f.label for f in findings}
            if all(model.label in found for model, _ in models):
                return findings  # the rules already said so for every label: one finding each, not two
            grams = self._grams(norm.text)
            probabilities = self._groups[sender].probabilities(grams)
            for (model, setting), probability in zip(models, probabilities, strict=True):
                if model.label in found:
                    continue
                if probability >= setting.alert or (review and probability >= setting.review):
                    opinion = model.score(grams)
                    review_only = opinion.score < setting.alert
                    findings.append(Finding(
                        label=model.label, rule_id=f"model.{model.label}", start=0, end=len(text), matched=text,
                        severity=setting.severity, fatal=False, alert=not review_only, ruleset=self.version,
                        source="model", score=round(opinion.score, 4), evidence=opinion.evidence,
                        review_only=review_only,
                    ))
        return findings

    def opinions(self, text: str, sender: str) -> list[Opinion]:
        """The model's scores for every enabled label of ``sender``, whatever the rules say (for evaluation)."""
        models = self._models.get(sender, ())
        if not models or not text:
            return []
        grams = self._grams(self.normalise(text).text)
        return [model.score(grams) for model, _ in models]

    def model_setting(self, label: str) -> ModelLabel | None:
        return next((setting for models in self._models.values() for model, setting in models
                     if model.label == label), None)

    def _rule_findings(self, text: str, norm: Normalised, compiled: _SenderRules) -> list[Finding]:
        hits: dict[int, list[Span]] = {}
        excepted: dict[int, list[Span]] = {}
        triggered: set[int] = set()
        if compiled.automaton is not None:
            for end, (length, entries) in compiled.automaton.iter(norm.text):
                span = (end - length + 1, end + 1)
                for index, kind in entries:
                    if kind == TERM:
                        hits.setdefault(index, []).append(span)
                    elif kind == EXCEPTION:
                        excepted.setdefault(index, []).append(span)
                    else:
                        triggered.add(index)
        if compiled.sound_automaton is not None:
            view = sound_view(norm.text)
            for end, (length, entries) in compiled.sound_automaton.iter(view.text):
                span = view.span(end - length + 1, end + 1)
                for index, _ in entries:
                    hits.setdefault(index, []).append(span)
        screened: list[bool | None] = [None] * len(compiled.screens)
        digits = norm.text.translate(HANZI_DIGITS) if compiled.digit_view else norm.text
        screened_digits: list[bool | None] = [None] * len(compiled.screens) if digits != norm.text else screened
        for regex_rule in compiled.regex_rules:
            subject, cache = (digits, screened_digits) if regex_rule.digits else (norm.text, screened)
            if regex_rule.gated and regex_rule.index not in triggered:
                if regex_rule.screen < 0:
                    continue
                passed = cache[regex_rule.screen]
                if passed is None:
                    passed = cache[regex_rule.screen] = bool(compiled.screens[regex_rule.screen].search(subject))
                if not passed:
                    continue
            for pattern in regex_rule.patterns:
                for match in pattern.finditer(subject):
                    if regex_rule.validator is None or regex_rule.validator(match.group()):
                        hits.setdefault(regex_rule.index, []).append(match.span())
        if not hits:
            return []
        quoted: list[Span] | None = None
        findings: list[Finding] = []
        for index, spans in hits.items():
            readback = self._readback[index]
            if readback is not None and readback[0].search(norm.text) and not (
                    readback[1] is not None and readback[1].search(norm.text)):
                continue  # the buyer's own data read back to the buyer
            if index in compiled.quoted_ok:
                if quoted is None:
                    quoted = quoted_spans(norm.text)
                spans = [(a, b) for a, b in spans if not any(lo < a and b < hi for lo, hi in quoted)]
            kept = self._keep(index, spans, excepted.get(index, ()), norm)
            if kept:
                findings.extend(self._finding(self.rules[index], span, norm, text) for span in _merge(kept))
        findings.sort(key=lambda f: (f.start, -f.end, f.rule_id))
        # two rules of one label on overlapping text are one finding (it counts once toward the score)
        unique: list[Finding] = []
        for finding in findings:
            if not any(k.label == finding.label and k.start < finding.end and finding.start < k.end for k in unique):
                unique.append(finding)
        unique.sort(key=lambda f: (f.start, f.end, f.rule_id))
        return unique

    def _keep(self, index: int, spans: list[Span], excepted: tuple[Span, ...] | list[Span],
              norm: Normalised) -> list[Span]:
        context = self._context[index]
        keep = self._context_keep[index]
        after = self._context_after[index]
        width = self.rules[index].context_chars
        text = norm.text
        kept = []
        cleared: list[Span] = []
        for start, end in spans:
            if any(lo <= start and end <= hi for lo, hi in excepted):
                continue
            # the context may stand just before the hit or inside it (维修点地址是上海市…88号)
            if context:
                nearest = -1  # where the context exception nearest the hit ends
                for word in context:
                    lo = max(0, start - width - len(word))
                    found = text.rfind(word, lo, end)
                    if found >= 0:
                        nearest = max(nearest, found + len(word))
                # ... unless a word of the person's data stands after it (订单上的联系人…，手机138…)
                if nearest >= 0 and not any(
                        text.rfind(word, nearest, start) >= 0 for word in keep):
                    cleared.append((start, end))
                    continue
            if after and any(text.find(word, end, end + width + len(word)) >= 0 for word in after):
                cleared.append((start, end))
                continue
            kept.append((start, end))
        # one decision per stretch of text: two patterns finding the same address from different starts (…市…路8号 and
        # 路8号3栋1002) are both cleared when the context clears one
        if cleared and kept:
            kept = [(a, b) for a, b in kept if not any(lo < b and a < hi for lo, hi in cleared)]
        return kept

    def _finding(self, rule: Rule, span: Span, norm: Normalised, text: str) -> Finding:
        start, end = norm.original_span(*span)
        return Finding(label=rule.label, rule_id=rule.id, start=start, end=end, matched=text[start:end],
                       severity=rule.severity, fatal=rule.fatal, alert=rule.alert, ruleset=self.version)


class RuleBook:
    """The rule set in force, compiled per shop on first use; replaced whole on a live change."""

    def __init__(self, ruleset: RuleSet) -> None:
        self._lock = threading.Lock()
        self._ruleset = ruleset
        self._detectors: dict[str, Detector] = {}

    @property
    def ruleset(self) -> RuleSet:
        return self._ruleset

    def replace(self, ruleset: RuleSet) -> bool:
        """Install ``ruleset`` if it is newer than the one in force; True if installed."""
        with self._lock:
            if ruleset.revision < self._ruleset.revision or ruleset.digest == self._ruleset.digest:
                return False
            self._ruleset = ruleset
            self._detectors = {}
            return True

    def detector(self, shop_id: str | None) -> Detector:
        key = shop_id if shop_id is not None and shop_id in self._ruleset.shops else ""
        detector = self._detectors.get(key)
        if detector is None:
            with self._lock:
                detector = Detector(self._ruleset.for_shop(key or None))
                self._detectors[key] = detector
        return detector

    def detect(self, text: str, sender: str, shop_id: str | None = None, *, review: bool = False) -> list[Finding]:
        """Findings that count (rules, and the model above its alert threshold); with ``review``,
        also the model's review-only findings for the QA queue."""
        return self.detector(shop_id).detect(text, sender, review=review)
