"""Alerts built from findings and timings, with the per-rule throttle."""

from __future__ import annotations

from typing import Any

from detectors import Finding, RuleBook
from stream.timing import MESSAGE_ID, TEXT, LogEntry
from zhijian.alerts import Alert, alert_id_for, excerpt_around, iso_from_ms
from zhijian.contract import ChatEvent

WAITING_RULE = "customer_waiting"
WAITING_REVISIONS = {"warning": 1, "critical": 2, "cleared": 3, "unanswered": 3}


def build_alert(event: ChatEvent, *, rule: str, severity: str, fatal: bool, start: int, end: int,
                detected_at: str, detail: dict[str, Any], alert_id: str | None = None, revision: int = 0,
                state: str = "open") -> Alert:
    excerpt, lo, hi = excerpt_around(event.text, start, end)
    return Alert(
        alert_id=alert_id or alert_id_for(rule, event.message_id, start, end),
        rule=rule, severity=severity, fatal=fatal,
        conversation_id=event.conversation_id, shop_id=event.shop_id, agent_id=event.agent_id,
        team_id=event.team_id, message_id=event.message_id, excerpt=excerpt, span=(lo, hi),
        ts=iso_from_ms(event.ts_ms), ts_ms=event.ts_ms, detected_at=detected_at, detail=detail,
        revision=revision, state=state,
    )


def finding_alert(event: ChatEvent, finding: Finding, detected_at: str, repeats: int) -> Alert:
    return build_alert(event, rule=finding.label, severity=finding.severity, fatal=finding.fatal,
                       start=finding.start, end=finding.end, detected_at=detected_at,
                       detail={"rule_id": finding.rule_id, "matched": finding.matched, "start": finding.start,
                               "ruleset": finding.ruleset, "sender": event.sender,
                               "repeats_since_last_alert": repeats})


def first_response_alert(event: ChatEvent, waited_ms: int, points: int, detected_at: str) -> Alert:
    return build_alert(event, rule="slow_first_response", severity="warning", fatal=False, start=0, end=0,
                       detected_at=detected_at,
                       detail={"first_response_s": round(waited_ms / 1000, 3), "points": points})


def throttled_alerts(state: dict[str, Any], event: ChatEvent, findings: list[Finding], book: RuleBook,
                     detected_at: str) -> list[Alert]:
    """One live alert per rule and conversation within the rule's throttle window.

    Every finding still counts; the suppressed ones are reported as a repeat count on the
    next alert of that rule, so a supervisor sees "3 more" instead of three alerts.
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
        alerts.append(finding_alert(event, finding, detected_at, suppressed))
        alerted[finding.rule_id] = [event.ts_ms, 0]
    state["alerted"] = alerted
    return alerts


def waiting_alert(state: dict[str, Any], conversation_id: str, pending: LogEntry | None, *, since_ms: int,
                  waited_ms: int, kind: str, threshold_s: float | None, now_ms: int) -> Alert:
    """customer_waiting for one waiting episode; every change keeps the alert_id, raises the revision."""
    text = pending[TEXT] if pending is not None else ""
    message_id = pending[MESSAGE_ID] if pending is not None else f"{conversation_id}@{since_ms}"
    event = ChatEvent(message_id=message_id, conversation_id=conversation_id, shop_id=state["shop_id"],
                      team_id=state["team_id"], agent_id=state["owner"], customer_id=None, sender="customer",
                      type="message", text=text, ts_ms=since_ms)
    severity = {"warning": "warning", "critical": "critical"}.get(kind, "critical" if state["waiting"]["level"] >= 2
                                                                   else "warning")
    return build_alert(
        event, rule=WAITING_RULE, severity=severity, fatal=False, start=0, end=0,
        detected_at=iso_from_ms(now_ms),
        alert_id=alert_id_for(WAITING_RULE, f"{conversation_id}@{since_ms}", 0, 0),
        revision=WAITING_REVISIONS[kind], state="open" if kind in ("warning", "critical") else kind,
        detail={"waiting_since": iso_from_ms(since_ms), "waited_s": round(waited_ms / 1000, 3),
                "threshold_s": threshold_s, "level": kind},
    )
