"""Alerts built from findings and timings, with the per-rule throttle."""

from __future__ import annotations

from typing import Any

from detectors import Finding, RuleBook
from stream.engine.state import ConversationState
from stream.engine.turns import Machine
from zhijian.core.alerts import Alert, alert_id_for, excerpt_around, iso_from_ms
from zhijian.core.contract import ChatEvent

WAITING_RULE = "customer_waiting"
WAITING_REVISIONS = {"warning": 1, "critical": 2, "cleared": 3, "unanswered": 3, "transferred": 3}


def build_alert(*, rule: str, severity: str, fatal: bool, conversation_id: str, shop_id: str, agent_id: str | None,
                team_id: str | None, message_id: str, text: str, start: int, end: int, ts_ms: int, detected_at: str,
                detail: dict[str, Any], alert_id: str | None = None, revision: int = 0, state: str = "open") -> Alert:
    excerpt, lo, hi = excerpt_around(text, start, end)
    return Alert(
        alert_id=alert_id or alert_id_for(rule, message_id, start, end),
        rule=rule, severity=severity, fatal=fatal, conversation_id=conversation_id, shop_id=shop_id,
        agent_id=agent_id, team_id=team_id, message_id=message_id, excerpt=excerpt, span=(lo, hi),
        ts=iso_from_ms(ts_ms), ts_ms=ts_ms, detected_at=detected_at, detail=detail, revision=revision, state=state,
    )


def _from_event(event: ChatEvent, **fields: Any) -> Alert:
    return build_alert(conversation_id=event.conversation_id, shop_id=event.shop_id, agent_id=event.agent_id,
                       team_id=event.team_id, message_id=event.message_id, text=event.text, ts_ms=event.ts_ms,
                       **fields)


def finding_alert(event: ChatEvent, finding: Finding, detected_at: str, repeats: int) -> Alert:
    detail: dict[str, Any] = {"rule_id": finding.rule_id, "matched": finding.matched, "start": finding.start,
                              "ruleset": finding.ruleset, "sender": event.sender, "repeats_since_last_alert": repeats}
    source = getattr(finding, "source", "rule")
    if source != "rule":
        detail.update(source=source, score=getattr(finding, "score", None),
                      evidence=list(getattr(finding, "evidence", ())))
    return _from_event(event, rule=finding.label, severity=finding.severity, fatal=finding.fatal,
                       start=finding.start, end=finding.end, detected_at=detected_at, detail=detail)


def first_response_alert(event: ChatEvent, waited_ms: int, points: int, detected_at: str) -> Alert:
    return _from_event(event, rule="slow_first_response", severity="warning", fatal=False, start=0, end=0,
                       detected_at=detected_at,
                       detail={"first_response_s": round(waited_ms / 1000, 3), "points": points})


def throttled_alerts(state: ConversationState, event: ChatEvent, findings: list[Finding], book: RuleBook,
                     detected_at: str) -> list[Alert]:
    """One live alert per rule and conversation within the rule's throttle window.

    Every finding still counts; the suppressed ones are reported as a repeat count on the
    next alert of that rule, so a supervisor sees "3 more" instead of three alerts.
    """
    alerts = []
    ruleset = book.ruleset
    for finding in findings:
        if not finding.alert:
            continue
        rule = ruleset.rule(finding.rule_id)
        window_ms = int((rule.throttle_s if rule else 0) * 1000)
        last_ts, suppressed = state.alerted.get(finding.rule_id, (None, 0))
        if last_ts is not None and window_ms and abs(event.ts_ms - last_ts) < window_ms:
            state.alerted[finding.rule_id] = [last_ts, suppressed + 1]
            continue
        alerts.append(finding_alert(event, finding, detected_at, suppressed))
        state.alerted[finding.rule_id] = [event.ts_ms, 0]
    return alerts


def waiting_alert(state: ConversationState, *, since_ms: int, waited_ms: int, kind: str, threshold_s: float | None,
                  now_ms: int) -> Alert:
    """customer_waiting for one waiting episode; every change keeps the alert_id, raises the revision."""
    message_id = state.waiting.message_id or f"{state.conversation_id}@{since_ms}"
    severity = {"warning": "warning", "critical": "critical"}.get(kind, "critical" if state.waiting.level >= 2
                                                                   else "warning")
    return build_alert(
        rule=WAITING_RULE, severity=severity, fatal=False, conversation_id=state.conversation_id,
        shop_id=state.shop_id, agent_id=state.owner, team_id=state.team_id, message_id=message_id,
        text=state.last_customer_text, start=0, end=0, ts_ms=since_ms, detected_at=iso_from_ms(now_ms),
        alert_id=alert_id_for(WAITING_RULE, f"{state.conversation_id}@{since_ms}", 0, 0),
        revision=WAITING_REVISIONS[kind], state="open" if kind in ("warning", "critical") else kind,
        detail={"waiting_since": iso_from_ms(since_ms), "waited_s": round(waited_ms / 1000, 3),
                "threshold_s": threshold_s, "level": kind},
    )


def unanswered_alert(state: ConversationState, current: Machine, *, reason: str, waited_ms: int,
                     now_ms: int) -> Alert:
    """回复中断: the conversation closed on an unanswered question."""
    text = state.last_customer_text
    return build_alert(
        rule="unanswered_at_end", severity="warning", fatal=False, conversation_id=state.conversation_id,
        shop_id=state.shop_id, agent_id=state.owner, team_id=state.team_id, message_id=str(current.pending_id),
        text=text, start=0, end=len(text), ts_ms=current.pending_ts or 0, detected_at=iso_from_ms(now_ms),
        detail={"close_reason": reason, "unanswered_s": round(waited_ms / 1000, 3)},
    )
