from typing import Any

from zhijian.storage import Store


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
