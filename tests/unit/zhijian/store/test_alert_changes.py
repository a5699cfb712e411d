"""The alerts table's change sequence: every insert and every revision update gets the next
value, visible in commit order with several writers, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import text

from tests.factories import alert
from zhijian.store.database import Database


def test_inserts_and_revision_updates_take_the_next_sequence_value(store: Database) -> None:
    assert store.alerts.last_change() == 0
    store.alerts.save([alert("a", 1000), alert("b", 2000)])
    first = store.alerts.changes(after=0)
    assert [a["alert_id"] for _, a in first] == ["a", "b"] and first[0][0] < first[1][0]
    cursor = first[-1][0]
    assert store.alerts.last_change() == cursor
    store.alerts.save([alert("a", 1000, revision=0)])  # a replay changes nothing, takes no place
    assert store.alerts.changes(after=cursor) == []
    store.alerts.save([alert("a", 1000, revision=2, severity="warning")])
    (seq, changed), = store.alerts.changes(after=cursor)
    assert seq > cursor and changed["alert_id"] == "a" and changed["revision"] == 2
    assert store.alerts.change_heads(after=0) == [(first[1][0], "b", 0), (seq, "a", 2)]


def test_changes_page_by_cursor_and_scope(store: Database) -> None:
    store.alerts.save([alert(f"x{n:03}", 1000 + n, team_id="A" if n % 2 else "B") for n in range(25)])
    seen, cursor = [], 0
    while page := store.alerts.changes(after=cursor, limit=7, team_id="A"):
        seen += [a["alert_id"] for _, a in page]
        cursor = page[-1][0]
    assert seen == [f"x{n:03}" for n in range(25) if n % 2]


def test_a_reader_that_sees_change_n_sees_every_change_below_it(store: Database) -> None:
    """Four writers at once; a reader's snapshots must never miss a lower change that appears later."""
    snapshots: list[set[int]] = []
    done = threading.Event()

    def write(worker: int) -> None:
        for batch in range(15):
            store.alerts.save([alert(f"w{worker}-{batch}-{n}", 1000 + n) for n in range(3)])

    def read() -> None:
        while not done.is_set():
            with store.engine.connect() as conn:
                snapshots.append({int(s) for s in conn.execute(text("SELECT seq FROM alerts")).scalars()})

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    final = {seq for seq, _ in store.alerts.changes(after=0, limit=10_000)}
    assert len(final) == 4 * 15 * 3
    for snapshot in snapshots:
        if snapshot:
            top = max(snapshot)
            assert {s for s in final if s <= top} == snapshot


def test_an_old_database_gets_the_sequence(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = Database(url)
    with old.engine.begin() as conn:  # the 0.1.0 alerts table: no revision, no seq, no sequence table
        conn.execute(text("CREATE TABLE alerts (alert_id VARCHAR(64) PRIMARY KEY, rule VARCHAR(64) NOT NULL, "
                          "severity VARCHAR(16) NOT NULL, fatal BOOLEAN NOT NULL, conversation_id VARCHAR(128) "
                          "NOT NULL, shop_id VARCHAR(128) NOT NULL, agent_id VARCHAR(128), team_id VARCHAR(128), "
                          "message_id VARCHAR(128) NOT NULL, ts_ms BIGINT NOT NULL, detected_at VARCHAR(40) NOT NULL, "
                          "payload TEXT NOT NULL)"))
    old.dispose()
    store = Database(url)
    store.upgrade()
    store.alerts.save([alert("n1", 1)])
    assert [a["alert_id"] for _, a in store.alerts.changes(after=0)] == ["n1"]
    store.dispose()
