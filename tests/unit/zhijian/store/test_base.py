from typing import Any

from tests.factories import alert
from zhijian.store.database import Database


def test_alerts_round_trip_newest_first(store: Database) -> None:
    assert store.alerts.save([alert("a", 1000), alert("b", 3000), alert("c", 2000, excerpt="嗯")]) == 3
    rows = store.alerts.recent(limit=10)
    assert [r["alert_id"] for r in rows] == ["b", "c", "a"]
    assert rows[1]["excerpt"] == "嗯" and rows[1]["span"] == [0, 1]
    assert [r["alert_id"] for r in store.alerts.recent(limit=10, since_ms=2000)] == ["b", "c"]
    assert [r["alert_id"] for r in store.alerts.recent(limit=1, before_ms=3000)] == ["c"]


def test_saving_the_same_alerts_twice_is_idempotent(store: Database) -> None:
    batch = [alert("a", 1000), alert("b", 2000)]
    assert store.alerts.save(batch) == 2
    assert store.alerts.save([*batch, alert("c", 3000)]) == 1
    assert store.alerts.count() == 3


def test_a_higher_revision_replaces_an_alert_and_a_lower_one_never_does(store: Database) -> None:
    warning = alert("w", 1000, rule="customer_waiting", severity="warning", fatal=False, revision=1, state="open")
    critical = dict(warning, severity="critical", revision=2)
    cleared = dict(warning, severity="critical", revision=3, state="cleared")
    assert store.alerts.save([warning, critical]) == 1  # one statement, newest of the batch kept
    assert store.alerts.save([warning]) == 0  # a replayed older revision changes nothing
    assert store.alerts.recent()[0]["severity"] == "critical"
    assert store.alerts.save([cleared, cleared]) == 1
    (row,) = store.alerts.recent()
    assert (row["state"], row["revision"]) == ("cleared", 3)


def snap(conv: str, version: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"conversation_id": conv, "shop_id": "s1", "team_id": "t1", "agent_id": "A",
                            "status": "open", "opened_ms": 1000, "closed_ms": None, "waiting_since_ms": None,
                            "version": version, "final": False, "metrics": {}}
    body.update(extra)
    return body


def test_conversation_snapshots_upsert_by_version_and_filter(store: Database) -> None:
    assert store.conversations.save([snap("c1", 1, status="waiting", waiting_since_ms=5000),
                                     snap("c2", 1, status="waiting", waiting_since_ms=3000, team_id="t2"),
                                     snap("c3", 1, agent_id="B", opened_ms=9000)]) == 3
    waiting = store.conversations.find(status="waiting")
    assert [c["conversation_id"] for c in waiting] == ["c2", "c1"]  # longest waiting first
    assert [c["conversation_id"] for c in store.conversations.find(team_id="t2")] == ["c2"]
    final = snap("c1", 3, status="closed", final=True, closed_ms=8000, transcript=[{"text": "您好"}])
    assert store.conversations.save([final, snap("c1", 2, status="open")]) == 1
    assert store.conversations.save([snap("c1", 2, status="open")]) == 0  # an older snapshot never wins
    stored = store.conversations.get("c1")
    assert stored is not None and stored["status"] == "closed" and stored["transcript"] == [{"text": "您好"}]
    listed = store.conversations.find(status="closed")
    assert [c["conversation_id"] for c in listed] == ["c1"] and "transcript" not in listed[0]
    assert [c["conversation_id"] for c in store.conversations.find(agent_id="B")] == ["c3"]
    assert store.conversations.get("nope") is None


def test_reconcile_closes_open_conversations_their_worker_no_longer_holds(tmp_path: Any) -> None:
    from zhijian.store.database import Database

    store = Database(f"sqlite:///{tmp_path}/r.db")
    store.upgrade()

    def snap(cid: str, status: str) -> dict[str, Any]:
        return {"conversation_id": cid, "shop_id": "s", "team_id": "t", "agent_id": "a", "status": status,
                "opened_ms": 1, "closed_ms": None, "waiting_since_ms": 5 if status == "waiting" else None,
                "version": 1, "final": False}

    store.conversations.save([snap("ghost", "waiting"), snap("live", "waiting"), snap("other", "open"),
                              snap("done", "closed")])
    closed = store.conversations.reconcile_open(lambda cid: cid != "other", lambda cid: cid == "live", reason="gone",
                                  at_iso="2026-11-23T00:00:00.000+00:00")
    assert closed == 1  # "other" belongs to another worker; "done" is closed already; "live" is held
    statuses = {c["conversation_id"]: (c["status"], c.get("close_reason")) for c in store.conversations.find()}
    assert statuses == {"ghost": ("closed", "gone"), "live": ("waiting", None), "other": ("open", None),
                        "done": ("closed", None)}
    assert store.conversations.find(status="waiting")[0]["conversation_id"] == "live"
    store.dispose()
