"""The notifier's durable cursor on real processes: alerts raised while it is down (killed with SIGKILL)
are pushed after it restarts, an alert older than the route's catch-up window is recorded as
skipped_stale instead of pushed, and two notifiers running at once push every alert exactly once."""

from __future__ import annotations

import datetime
import re
import signal
import uuid
from collections import Counter
from typing import Any

import pytest

from tests.integration.conftest import Stack
from tests.integration.harness import Proc, chat_event, http_json, post_json, put_json, wait_for
from tests.receivers import Receivers, card_text
from zhijian.kafka.broker import free_port
from zhijian.store.database import Database

pytestmark = pytest.mark.broker
SECRET = "hook-cursor"


def pushed_ids(receivers: Receivers, team: str) -> Counter[str]:
    ids: Counter[str] = Counter()
    for received in receivers.of("webhook"):
        text = card_text(received)
        assert received.valid, received.why
        if team in text:
            ids.update(re.findall(r"#alert=([0-9a-zA-Z_-]+)", text))
    return ids


def test_restart_catches_up_and_two_notifiers_push_each_alert_once(stack: Stack) -> None:
    receivers = Receivers({"webhook": SECRET}).start()
    store = Database(stack.env["DATABASE_URL"])
    notifiers: list[Proc] = []
    run = uuid.uuid4().hex[:6]
    team, channel = f"team-{run}", f"hook_{run}"
    env = {**stack.env, "ZHIJIAN_T_CURSOR_URL": receivers.urls()["webhook"], "ZHIJIAN_T_CURSOR_SECRET": SECRET}
    try:
        _, current = http_json(f"{stack.api_url}/api/rules", stack.token)
        document = dict(current["document"])
        document["notify"] = {
            "digest_window_s": 0, "rate_per_minute": 10_000,
            "channels": {channel: {"kind": "webhook", "url_env": "ZHIJIAN_T_CURSOR_URL",
                                   "secret_env": "ZHIJIAN_T_CURSOR_SECRET"}},
            "routes": [{"teams": [team], "rules": ["banned_word"], "channels": [channel], "catchup_s": 600}]}
        status, published = put_json(f"{stack.api_url}/api/rules", stack.token, document)
        assert status == 200, published

        def start(label: str) -> str:
            port = free_port()
            proc = Proc("notify", {**env, "ZHIJIAN_NOTIFY_PORT": str(port)}, stack.workdir, label)
            notifiers.append(proc)
            health_url = f"http://127.0.0.1:{port}/health"

            def ready() -> bool:
                proc.assert_running()
                code, body = http_json(health_url)
                return (code == 200 and body["ruleset"] == published["version"] and channel in body["channels"]
                        and body["sweeps"] >= 1)

            wait_for(ready, 60, f"{label} ready and swept once")
            return health_url

        def send(tag: str, count: int) -> list[str]:
            convs = [f"cur-{run}-{tag}-{n}" for n in range(count)]
            events = [chat_event(f"m-{c}", c, "agent", "哦，这个不知道", agent=f"ag-{run}-{n % 3}", team=team)
                      for n, c in enumerate(convs)]
            code, body = post_json(f"{stack.api_url}/api/events", stack.token, events)
            assert code == 200 and body["accepted"] == count, body
            return convs

        def stored(count: int) -> list[dict[str, Any]]:
            def enough() -> list[dict[str, Any]] | None:
                found = [a for _, a in store.alerts.changes(after=0, limit=100_000, team_id=team)
                         if a["rule"] == "banned_word"]
                return found if len(found) >= count else None
            result: list[dict[str, Any]] = wait_for(enough, 60, f"{count} alerts of {team} in SQL")
            return result

        first = start(f"notify-{run}-a")
        send("up", 5)
        wait_for(lambda: len(pushed_ids(receivers, team)) >= 5, 60, "the first 5 alerts pushed")

        notifiers[0].stop(signal.SIGKILL)  # no goodbye: whatever it had not recorded is the test
        send("down", 6)
        while_down = stored(11)
        # one alert detected two hours ago (a notifier down that long): recorded as skipped, not pushed
        stale = dict(while_down[-1], alert_id=f"stale-{run}", conversation_id=f"cur-{run}-stale",
                     detected_at=(datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)).isoformat())
        assert store.alerts.save([stale]) == 1

        twins = [start(f"notify-{run}-b"), start(f"notify-{run}-c")]
        send("twins", 4)
        everything = {a["alert_id"] for a in stored(16)}
        fresh = everything - {stale["alert_id"]}
        assert len(fresh) == 15
        wait_for(lambda: set(pushed_ids(receivers, team)) >= fresh, 60, "all 15 alerts pushed")

        newest = store.alerts.last_change()

        def settled(url: str) -> bool:
            _, body = http_json(url)
            stats = body["channels"][channel]
            return body["cursor"] >= newest and body["pending_pushes"] == 0 and stats["waiting"] == 0 \
                and stats["queued"] == stats["sent"] + stats["failed"]

        wait_for(lambda: all(settled(u) for u in twins), 60, "both notifiers past the newest alert, queues empty")
        ids = pushed_ids(receivers, team)
        assert set(ids) == fresh, set(ids) ^ fresh
        assert all(n == 1 for n in ids.values()), {k: n for k, n in ids.items() if n > 1}

        healths = [http_json(u)[1] for u in (*twins,)]
        assert sum(h["skipped_stale"] for h in healths) == 1
        assert sum(h["channels"][channel]["failed"] for h in healths) == 0
        assert sum(h["routed"] for h in healths) == 10  # the 6 missed while down, the 4 sent to the twins
        ledger = store.notify
        rows = [r for r in ledger.deliveries() if r["destination"] == channel]
        assert Counter(r["status"] for r in rows) == {"pushed": 15, "skipped_stale": 1}
        assert {r["alert_id"] for r in rows if r["status"] == "skipped_stale"} == {stale["alert_id"]}
        assert ledger.cursors()[channel] >= newest
        assert first not in twins
    finally:
        for proc in notifiers:
            proc.stop()
        receivers.stop()
        store.dispose()
