from typing import Any

from zhijian.store.base import Store


def alert(alert_id: str, ts_ms: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "alert_id": alert_id, "rule": "banned_word", "severity": "critical", "fatal": True,
        "conversation_id": "c1", "shop_id": "s1", "agent_id": "a1", "team_id": "t1", "message_id": f"m-{alert_id}",
        "excerpt": "哦，好的", "span": [0, 1], "ts": "x", "ts_ms": ts_ms, "detected_at": "y", "detail": {},
    }
    base.update(extra)
    return base


def test_alerts_round_trip_newest_first(store: Store) -> None:
    assert store.save_alerts([alert("a", 1000), alert("b", 3000), alert("c", 2000, excerpt="嗯")]) == 3
    rows = store.recent_alerts(limit=10)
    assert [r["alert_id"] for r in rows] == ["b", "c", "a"]
    assert rows[1]["excerpt"] == "嗯" and rows[1]["span"] == [0, 1]
    assert [r["alert_id"] for r in store.recent_alerts(limit=10, since_ms=2000)] == ["b", "c"]
    assert [r["alert_id"] for r in store.recent_alerts(limit=1, before_ms=3000)] == ["c"]


def test_saving_the_same_alerts_twice_is_idempotent(store: Store) -> None:
    batch = [alert("a", 1000), alert("b", 2000)]
    assert store.save_alerts(batch) == 2
    assert store.save_alerts([*batch, alert("c", 3000)]) == 1
    assert store.count_alerts() == 3


def test_a_higher_revision_replaces_an_alert_and_a_lower_one_never_does(store: Store) -> None:
    warning = alert("w", 1000, rule="customer_waiting", severity="warning", fatal=False, revision=1, state="open")
    critical = dict(warning, severity="critical", revision=2)
    cleared = dict(warning, severity="critical", revision=3, state="cleared")
    assert store.save_alerts([warning, critical]) == 1  # one statement, newest of the batch kept
    assert store.save_alerts([warning]) == 0  # a replayed older revision changes nothing
    assert store.recent_alerts()[0]["severity"] == "critical"
    assert store.save_alerts([cleared, cleared]) == 1
    (row,) = store.recent_alerts()
    assert (row["state"], row["revision"]) == ("cleared", 3)


def snap(conv: str, version: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"conversation_id": conv, "shop_id": "s1", "team_id": "t1", "agent_id": "A",
                            "status": "open", "opened_ms": 1000, "closed_ms": None, "waiting_since_ms": None,
                            "version": version, "final": False, "metrics": {}}
    body.update(extra)
    return body


def test_conversation_snapshots_upsert_by_version_and_filter(store: Store) -> None:
    assert store.save_conversations([snap("c1", 1, status="waiting", waiting_since_ms=5000),
                                     snap("c2", 1, status="waiting", waiting_since_ms=3000, team_id="t2"),
                                     snap("c3", 1, agent_id="B", opened_ms=9000)]) == 3
    waiting = store.list_conversations(status="waiting")
    assert [c["conversation_id"] for c in waiting] == ["c2", "c1"]  # longest waiting first
    assert [c["conversation_id"] for c in store.list_conversations(team_id="t2")] == ["c2"]
    final = snap("c1", 3, status="closed", final=True, closed_ms=8000, transcript=[{"text": "您好"}])
    assert store.save_conversations([final, snap("c1", 2, status="open")]) == 1
    assert store.save_conversations([snap("c1", 2, status="open")]) == 0  # an older snapshot never wins
    stored = store.get_conversation("c1")
    assert stored is not None and stored["status"] == "closed" and stored["transcript"] == [{"text": "您好"}]
    listed = store.list_conversations(status="closed")
    assert [c["conversation_id"] for c in listed] == ["c1"] and "transcript" not in listed[0]
    assert [c["conversation_id"] for c in store.list_conversations(agent_id="B")] == ["c3"]
    assert store.get_conversation("nope") is None


def test_reconcile_closes_open_conversations_their_worker_no_longer_holds(tmp_path: Any) -> None:
    from zhijian.store.base import Store

    store = Store(f"sqlite:///{tmp_path}/r.db")
    store.create_schema()

    def snap(cid: str, status: str) -> dict[str, Any]:
        return {"conversation_id": cid, "shop_id": "s", "team_id": "t", "agent_id": "a", "status": status,
                "opened_ms": 1, "closed_ms": None, "waiting_since_ms": 5 if status == "waiting" else None,
                "version": 1, "final": False}

    store.save_conversations([snap("ghost", "waiting"), snap("live", "waiting"), snap("other", "open"),
                              snap("done", "closed")])
    closed = store.reconcile_open(lambda cid: cid != "other", lambda cid: cid == "live", reason="gone",
                                  at_iso="2026-11-23T00:00:00.000+00:00")
    assert closed == 1  # "other" belongs to another worker; "done" is closed already; "live" is held
    statuses = {c["conversation_id"]: (c["status"], c.get("close_reason")) for c in store.list_conversations()}
    assert statuses == {"ghost": ("closed", "gone"), "live": ("waiting", None), "other": ("open", None),
                        "done": ("closed", None)}
    assert store.list_conversations(status="waiting")[0]["conversation_id"] == "live"
    store.dispose()
