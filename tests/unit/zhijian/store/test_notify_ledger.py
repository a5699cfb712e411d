"""The notifier's ledger: cursors start at the newest alert change and never go back; a claim is won by
exactly one of several concurrent claimants (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

from zhijian.store.database import Database
from zhijian.store.notify_ledger import Claim


def alert(n: int) -> dict[str, object]:
    return {"alert_id": f"al{n}", "rule": "banned_word", "severity": "critical", "fatal": False,
            "conversation_id": f"c{n}", "shop_id": "s", "agent_id": "a", "team_id": "t", "message_id": f"m{n}",
            "ts_ms": 1_700_000_000_000 + n, "detected_at": "2026-01-01T00:00:00.000+00:00"}


def test_cursors_start_at_the_newest_change_and_only_move_up(store: Database) -> None:
    store.alerts.save([alert(n) for n in range(3)])
    ledger = store.notify
    newest = store.alerts.last_change()
    assert newest > 0
    assert ledger.start_cursors(["a", "b"]) == {"a": newest, "b": newest}
    ledger.advance(["a"], newest + 5)
    ledger.advance(["a", "b"], newest - 2)  # a stale sweep never moves a cursor back
    assert ledger.cursors() == {"a": newest + 5, "b": newest}
    store.alerts.save([alert(9)])
    assert ledger.start_cursors(["a", "b", "c"])["c"] == store.alerts.last_change()


def test_each_claim_is_won_exactly_once_by_concurrent_notifiers(store: Database) -> None:
    ledger = store.notify
    claims: list[Claim] = [(f"al{n}", "critical", f"ch{n % 3}") for n in range(60)]
    won: dict[str, set[Claim]] = {}
    start = threading.Barrier(4)

    def claimant(owner: str) -> None:
        start.wait()
        mine: set[Claim] = set()
        for offset in range(0, len(claims), 7):
            mine |= ledger.claim([(c, None, "pushed") for c in claims[offset:offset + 7]], owner)
        won[owner] = mine

    threads = [threading.Thread(target=claimant, args=(f"n{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(len(w) for w in won.values()) == len(claims)
    assert set().union(*won.values()) == set(claims)
    rows = ledger.deliveries()
    assert len(rows) == len(claims)
    assert {(r["alert_id"], r["what"], r["destination"]): r["owner"] for r in rows} == {
        c: owner for owner, mine in won.items() for c in mine}
    assert ledger.claim([(claims[0], 1, "skipped_stale")], "late") == set()
    assert ledger.status_counts() == {"pushed": len(claims)}
