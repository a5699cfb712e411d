"""Per-conversation processing, free of Faust so it can be tested list-in/list-out.

``process_event`` takes the stored state of one conversation (a JSON-able dict, as kept
in the Faust table) and one valid event, and returns the new state plus what to emit:
alerts for ``chat.alerts`` and activity records for the per-agent tally.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from detectors import Finding, RuleBook, load_ruleset
from zhijian.alerts import Alert, alert_id_for, excerpt_around, iso_from_ms
from zhijian.contract import ChatEvent

# 首次响应时间 tiers of the seed rubric: (upper bound in seconds, points).
FIRST_RESPONSE_TIERS: tuple[tuple[float, int], ...] = ((10.0, 10), (20.0, 6), (25.0, 3))
FIRST_RESPONSE_ALERT_S = 25.0  # over this the item scores 0: worth a supervisor's look
SEEN_IDS_KEPT = 500  # per conversation; a conversation longer than this is an outlier

ConversationState = dict[str, Any]
_default_book: RuleBook | None = None


def default_rulebook() -> RuleBook:
    """The seed rules, for callers (tests, tools) that do not follow live rule changes."""
    global _default_book
    if _default_book is None:
        _default_book = RuleBook(load_ruleset())
    return _default_book


def first_response_points(seconds: float) -> int:
    for bound, points in FIRST_RESPONSE_TIERS:
        if seconds <= bound:
            return points
    return 0


@dataclass(slots=True)
class Outcome:
    state: ConversationState
    duplicate: bool = False
    alerts: list[Alert] = field(default_factory=list)
    activity: list[dict[str, Any]] = field(default_factory=list)


def new_state(event: ChatEvent) -> ConversationState:
    return {
        "shop_id": event.shop_id,
        "team_id": event.team_id,
        "agent_id": event.agent_id,
        "seen": [],
        "first_customer_ts": None,
        "first_agent_ts": None,
        "first_response_ms": None,
        "alerted": {},  # rule_id -> [ts_ms of the last live alert, findings suppressed since]
        "last_ts": event.ts_ms,
        "ended": False,
    }


def _alert(event: ChatEvent, *, rule: str, severity: str, fatal: bool, start: int, end: int,
           detected_at: str, detail: dict[str, Any]) -> Alert:
    excerpt, lo, hi = excerpt_around(event.text, start, end)
    return Alert(
        alert_id=alert_id_for(rule, event.message_id, start, end),
        rule=rule,
        severity=severity,
        fatal=fatal,
        conversation_id=event.conversation_id,
        shop_id=event.shop_id,
        agent_id=event.agent_id,
        team_id=event.team_id,
        message_id=event.message_id,
        excerpt=excerpt,
        span=(lo, hi),
        ts=iso_from_ms(event.ts_ms),
        ts_ms=event.ts_ms,
        detected_at=detected_at,
        detail=detail,
    )


def _finding_alert(event: ChatEvent, finding: Finding, detected_at: str, repeats: int) -> Alert:
    return _alert(event, rule=finding.label, severity=finding.severity, fatal=finding.fatal,
                  start=finding.start, end=finding.end, detected_at=detected_at,
                  detail={"rule_id": finding.rule_id, "matched": finding.matched, "start": finding.start,
                          "ruleset": finding.ruleset, "sender": event.sender,
                          "repeats_since_last_alert": repeats})


def _throttled_alerts(state: ConversationState, event: ChatEvent, findings: list[Finding], book: RuleBook,
                      detected_at: str) -> list[Alert]:
    """One live alert per rule and conversation within the rule's throttle window.

    Every finding still counts (activity); the suppressed ones are reported as a repeat count
    on the next alert of that rule, so a supervisor sees "3 more" instead of three alerts.
    """
    alerted = dict(state.get("alerted") or {})
    alerts = []
    for finding in findings:
        if not finding.alert:
            continue
        rule = book.ruleset.rule(finding.rule_id)
        window_ms = int((rule.throttle_s if rule else 0) * 1000)
        last_ts, suppressed = alerted.get(finding.rule_id, (None, 0))
        if last_ts is not None and window_ms and abs(event.ts_ms - last_ts) < window_ms:
            alerted[finding.rule_id] = [last_ts, suppressed + 1]
            continue
        alerts.append(_finding_alert(event, finding, detected_at, suppressed))
        alerted[finding.rule_id] = [event.ts_ms, 0]
    state["alerted"] = alerted
    return alerts


def _first_response_alert(event: ChatEvent, waited_ms: int, detected_at: str) -> Alert:
    seconds = waited_ms / 1000
    return _alert(event, rule="slow_first_response", severity="warning", fatal=False, start=0, end=0,
                  detected_at=detected_at,
                  detail={"first_response_s": round(seconds, 3), "points": first_response_points(seconds)})


def process_event(state: ConversationState | None, event: ChatEvent, *, now_ms: int,
                  book: RuleBook | None = None) -> Outcome:
    """Apply one valid event to its conversation's state, detecting with ``book``'s rules."""
    book = book or default_rulebook()
    if state is None:
        state = new_state(event)
    elif event.message_id in state["seen"]:
        return Outcome(state=state, duplicate=True)
    else:
        state = dict(state)

    seen = list(state["seen"])
    seen.append(event.message_id)
    state["seen"] = seen[-SEEN_IDS_KEPT:]
    state["last_ts"] = max(state["last_ts"], event.ts_ms)
    if event.team_id is not None:
        state["team_id"] = event.team_id
    if event.sender == "agent" and event.agent_id is not None:
        state["agent_id"] = event.agent_id

    outcome = Outcome(state=state)
    if event.type == "conversation_ended":
        state["ended"] = True
        return outcome
    if event.type != "message":
        return outcome

    if event.sender == "customer":
        first = state["first_customer_ts"]
        if first is None or event.ts_ms < first:
            state["first_customer_ts"] = event.ts_ms
        findings = book.detect(event.text, "customer", event.shop_id)
        if findings:  # an angry customer: the supervisor may want to step in (安抚)
            if event.agent_id is None and state["agent_id"] is not None:
                event = replace(event, agent_id=state["agent_id"])
            outcome.alerts.extend(_throttled_alerts(state, event, findings, book, iso_from_ms(now_ms)))
        return outcome
    if event.sender != "agent":
        return outcome  # bot and system messages are not a human agent's response

    detected_at = iso_from_ms(now_ms)
    first_response_ms: int | None = None
    if state["first_agent_ts"] is None:
        state["first_agent_ts"] = event.ts_ms
        customer_ts = state["first_customer_ts"]
        if customer_ts is not None and event.ts_ms >= customer_ts:
            first_response_ms = event.ts_ms - customer_ts
            state["first_response_ms"] = first_response_ms
            if first_response_ms > FIRST_RESPONSE_ALERT_S * 1000:
                outcome.alerts.append(_first_response_alert(event, first_response_ms, detected_at))

    findings = book.detect(event.text, "agent", event.shop_id)
    outcome.alerts.extend(_throttled_alerts(state, event, findings, book, detected_at))

    rules = [finding.label for finding in findings]  # every finding counts, alerted or not
    if any(alert.rule == "slow_first_response" for alert in outcome.alerts):
        rules.append("slow_first_response")
    outcome.activity.append(
        {
            "agent_id": event.agent_id,
            "team_id": event.team_id,
            "message_id": event.message_id,
            "rules": rules,
            "ruleset": book.ruleset.version,
            "first_response_ms": first_response_ms,
        }
    )
    return outcome
