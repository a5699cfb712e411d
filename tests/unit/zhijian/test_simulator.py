"""The simulator's alert volume: raw alerts and wall rows (one per offending message) per agent-hour."""

from __future__ import annotations

import json

from zhijian.simulator import AlertCount, SimStats


def payload(alert_id: str, message_id: str, severity: str = "warning", **extra: object) -> bytes:
    return json.dumps({"alert_id": alert_id, "conversation_id": "c1", "message_id": message_id,
                       "severity": severity, **extra}).encode()


def test_alerts_are_counted_once_and_grouped_per_offending_message() -> None:
    count = AlertCount()
    for raw in (payload("a1", "m1", "critical"), payload("a2", "m1"), payload("a3", "m1"),  # one message, 3 findings
                payload("a4", "m2"), payload("a4", "m2", revision=2),  # a revision is the same alert
                json.dumps({"kind": "action", "alert_id": "a1", "state": "claimed"}).encode(),  # not an alert
                b"not json", None, b"[1, 2]"):
        count.add(raw)
    assert (len(count.alert_ids), len(count.rows), len(count.critical_rows)) == (4, 2, 1)
    # 12 agents for 10 minutes are 2 agent-hours
    line = count.summary(12, 600.0)
    assert "4 alerts = 2.0 per agent-hour" in line and "2 wall rows" in line and "= 1.0 per agent-hour" in line
    assert "50% critical" in line and "12 agents over 10.0 min" in line


def test_the_summary_says_when_alerts_could_not_be_counted() -> None:
    stats = SimStats(alerts=AlertCount(problem="RuntimeError: no topic chat.alerts"))
    assert "alerts not counted (RuntimeError: no topic chat.alerts)" in stats.summary()
    assert "per agent-hour" not in SimStats().summary()  # not asked to count
