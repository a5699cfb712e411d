"""``zhijian notify``: the notifier process.

It reads ``chat.alerts`` and ``chat.alert-actions`` with its own group-less consumer (from the end:
pushes are about now), routes each new alert (and each rise in severity of one) to the channels of
the ``[notify]`` section of the rule set in force (followed live on ``chat.rules``), and runs the
escalation ladder: an alert still open and unclaimed ``after_s`` after it was raised is pushed to
the step's channels, recorded in the audit trail, and published on ``chat.alert-actions`` as
``{"kind": "action", "action": "escalated", ...}`` so every dashboard shows it on the alert.
Health and counters: ``GET /health`` on ``ZHIJIAN_NOTIFY_HOST:ZHIJIAN_NOTIFY_PORT`` (127.0.0.1:6067).

Exactly once, across restarts and processes (``zhijian/store/notify_ledger.py``): every push is first
claimed in SQL (``notify_deliveries``, primary key alert × severity-or-step × channel), so of two
notifiers, or a restarted one, only the claim's winner pushes. The broker is the fast path; SQL is the
record: a sweep reads every alert change above each channel's durable cursor (``notify_cursors``,
``alerts.seq``) once a second, so alerts raised while the notifier was down (or whose broker records
vanished) are pushed after it comes back, unless they were detected longer ago than the route's
``catchup_s`` (default 900 s): those are recorded as ``skipped_stale``, not pushed and not lost silently.
A claim is taken just before the card is queued to the channel; a notifier killed between the claim and
the HTTP request loses that push (at most once per claim: a second push is the worse failure on a floor).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from detectors import RuleBook
from zhijian.core.settings import Settings
from zhijian.kafka.rules import follow, initial_ruleset
from zhijian.notify.cards import alert_card
from zhijian.notify.channels import ChannelWorker, Push
from zhijian.notify.config import EMPTY, NotifyConfig, NotifyConfigError, Step, parse_notify
from zhijian.store.database import Database
from zhijian.store.notify_ledger import Claim, NotifyLedger

log = logging.getLogger(__name__)
for _chatty in ("httpx", "httpcore"):  # they log request URLs, and webhook URLs carry credentials
    logging.getLogger(_chatty).setLevel(logging.WARNING)
SETTLED = ("claimed", "resolved", "false_positive")
REMEMBERED = 50_000
SWEEP_BATCH = 500


def detected_s(alert: dict[str, Any]) -> float:
    """When the alert was detected (wall clock, seconds); its event time when that is unreadable."""
    try:
        return datetime.fromisoformat(str(alert["detected_at"])).timestamp()
    except (KeyError, ValueError, TypeError):
        return int(alert.get("ts_ms") or 0) / 1000


class Notifier:
    def __init__(self, settings: Settings, store: Database, book: RuleBook, *, backoff_s: float = 0.5,
                 ledger: NotifyLedger | None = None) -> None:
        self.settings, self.store, self.book = settings, store, book
        self.ledger = ledger  # None: no durable claims (unit tests of routing alone)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pending: list[tuple[dict[str, Any], int | None, frozenset[str] | None]] = []
        self.cursor = 0  # the lowest channel cursor after the last sweep
        self.backoff_s = backoff_s
        self.client = httpx.AsyncClient()
        self.workers: dict[str, ChannelWorker] = {}
        self._config: tuple[str, NotifyConfig] = ("", EMPTY)
        self.config_error: str | None = None
        self.alerts: OrderedDict[str, dict[str, Any]] = OrderedDict()  # newest revision of recent alerts
        self.pushed: set[tuple[str, str]] = set()  # (alert_id, severity) already routed
        self.states: dict[str, str] = {}  # alert_id → claim state seen on chat.alert-actions
        self.ladder: list[tuple[float, str, int]] = []  # (due, alert_id, step index)
        self.scheduled: set[tuple[str, int]] = set()
        self.counters = {"alerts": 0, "routed": 0, "escalated": 0, "escalations_skipped": 0,
                         "escalation_errors": 0, "bad_records": 0, "skipped_stale": 0, "already_claimed": 0,
                         "caught_up": 0, "ledger_errors": 0, "sweeps": 0}
        self.connected = False
        self.producer: AIOKafkaProducer | None = None

    @property
    def config(self) -> NotifyConfig:
        ruleset = self.book.ruleset
        if self._config[0] != ruleset.digest:
            try:
                config = parse_notify(ruleset.document.get("notify"))
                self.config_error = None
            except NotifyConfigError as exc:  # keep the last good one
                log.error("the [notify] section of rule set %s is invalid: %s", ruleset.version, exc)
                self.config_error = str(exc)
                config = self._config[1]
            self._config = (ruleset.digest, config)
            self._sync_workers(config)
        return self._config[1]

    def _sync_workers(self, config: NotifyConfig) -> None:
        for name, channel in config.channels.items():
            worker = self.workers.get(name)
            if worker is not None and worker.channel == channel:
                continue
            if worker is not None:
                asyncio.create_task(worker.stop())  # noqa: RUF006 - it ends by itself
            fresh = ChannelWorker(channel, self.client, rate_per_minute=lambda: self.config.rate_per_minute,
                                  digest_window_s=lambda: self.config.digest_window_s,
                                  dashboard_url=self.dashboard_url, backoff_s=self.backoff_s)
            if worker is not None:
                fresh.stats = worker.stats
            fresh.start()
            self.workers[name] = fresh

    def dashboard_url(self) -> str:
        return (self.config.dashboard_url or os.environ.get("ZHIJIAN_PUBLIC_URL")
                or f"http://{self.settings.api_host}:{self.settings.api_port}")

    # -- records -----------------------------------------------------------------------------------------
    def on_alert(self, alert: dict[str, Any], seq: int | None = None, behind: frozenset[str] | None = None) -> None:
        """Route a new alert (or a rise in its severity). ``seq``/``behind``: it came from the SQL sweep, for
        the channels in ``behind`` (those whose cursor is below ``seq``)."""
        alert_id = str(alert["alert_id"])
        known = self.alerts.get(alert_id)
        if known is not None and int(known.get("revision", 0)) > int(alert.get("revision", 0)):
            return
        self.alerts[alert_id] = alert
        self.alerts.move_to_end(alert_id)
        while len(self.alerts) > REMEMBERED:
            old, _ = self.alerts.popitem(last=False)
            self.states.pop(old, None)
        if alert.get("state", "open") != "open":
            return
        config = self.config
        key = (alert_id, str(alert.get("severity")))
        if key not in self.pushed:
            self.pushed.add(key)
            self.counters["alerts"] += 1
            if self.ledger is None:
                for name in config.route(alert):
                    self.counters["routed"] += 1
                    self.workers[name].offer_alert(alert)
            else:
                self.pending.append((alert, seq, behind))  # claimed, then offered, by flush()
        stale = time.time() - detected_s(alert) > config.catchup_s
        for step in config.escalation:
            if not stale and step.match.matches(alert) and (alert_id, step.index) not in self.scheduled:
                self.scheduled.add((alert_id, step.index))
                due = int(alert.get("ts_ms") or time.time() * 1000) / 1000 + step.after_s
                heapq.heappush(self.ladder, (due, alert_id, step.index))

    async def flush(self) -> None:
        """Claim the pending pushes in SQL and offer the ones this process won to their channels."""
        if not self.pending or self.ledger is None:
            return
        config, now = self.config, time.time()
        rows: list[tuple[Claim, int | None, str]] = []
        offers: dict[Claim, dict[str, Any]] = {}
        batch, self.pending = self.pending, []  # the sweep and the consumer both add: take them at once
        for alert, seq, behind in batch:
            for name, window in config.windows(alert).items():
                if behind is not None and name not in behind:
                    continue
                claim = (str(alert["alert_id"]), str(alert.get("severity")), name)
                stale = now - detected_s(alert) > window
                rows.append((claim, seq, "skipped_stale" if stale else "pushed"))
                if not stale:
                    offers[claim] = alert
        ledger = self.ledger
        try:
            won = await asyncio.to_thread(ledger.claim, rows, self.owner)
        except BaseException:
            self.pending = batch + self.pending  # kept, claimed again next time
            raise
        for claim, _, status in rows:
            if claim not in won:
                self.counters["already_claimed"] += 1
            elif status == "skipped_stale":
                self.counters["skipped_stale"] += 1
            elif claim[2] in self.workers:
                self.counters["routed"] += 1
                self.workers[claim[2]].offer_alert(offers[claim])

    async def sweep(self) -> None:
        """Serve every alert change above the channels' cursors from SQL, then move the cursors."""
        if self.ledger is None:
            return
        names = sorted(self.config.channels)
        if not names:
            return
        ledger = self.ledger
        cursors = await asyncio.to_thread(ledger.start_cursors, names)
        low = min(cursors.values())
        while True:
            changes = await asyncio.to_thread(self.store.alerts.changes, after=low, limit=SWEEP_BATCH)
            for seq, alert in changes:
                behind = frozenset(n for n in names if cursors[n] < seq)
                seen = (str(alert.get("alert_id")), str(alert.get("severity"))) in self.pushed
                if behind and not seen and self._open(alert):
                    self.pending.append((alert, seq, behind))
                    self.counters["caught_up"] += 1
            await self.flush()
            if changes:
                low = changes[-1][0]
                await asyncio.to_thread(ledger.advance, names, low)
                for name in names:
                    cursors[name] = max(cursors[name], low)
            if len(changes) < SWEEP_BATCH:
                break
        self.cursor = low
        self.counters["sweeps"] += 1

    def _open(self, alert: dict[str, Any]) -> bool:
        """Note a swept alert as seen (for the ladder and revisions); True when it is open and so pushable."""
        alert_id = str(alert["alert_id"])
        known = self.alerts.get(alert_id)
        if known is None or int(known.get("revision", 0)) <= int(alert.get("revision", 0)):
            self.alerts[alert_id] = alert
        self.pushed.add((alert_id, str(alert.get("severity"))))
        if alert.get("state", "open") != "open":
            return False
        config = self.config
        if time.time() - detected_s(alert) <= config.catchup_s:
            for step in config.escalation:
                if step.match.matches(alert) and (alert_id, step.index) not in self.scheduled:
                    self.scheduled.add((alert_id, step.index))
                    due = int(alert.get("ts_ms") or time.time() * 1000) / 1000 + step.after_s
                    heapq.heappush(self.ladder, (due, alert_id, step.index))
        return True

    async def sweep_clock(self) -> None:
        """The SQL catch-up: at start, then every second (it also closes the broker-to-SQL gap)."""
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the cursor stays, the next sweep retries
                self.counters["ledger_errors"] += 1
                log.warning("notifier catch-up failed (%s); retrying in 1 s", type(exc).__name__)
            await asyncio.sleep(1.0)

    def on_action(self, action: dict[str, Any]) -> None:
        if action.get("action") == "escalated" or "alert_id" not in action:
            return
        self.states[str(action["alert_id"])] = str(action.get("state") or "open")

    def on_record(self, topic: str, value: bytes | None) -> None:
        try:
            record = json.loads(value or b"")
            if not isinstance(record, dict) or "alert_id" not in record:
                raise ValueError("not an alert record")
            if topic == self.settings.topics.alerts:
                self.on_alert(record)
            else:
                self.on_action(record)
        except (ValueError, TypeError, KeyError):
            self.counters["bad_records"] += 1

    # -- the ladder --------------------------------------------------------------------------------------
    async def escalate_due(self) -> None:
        now = time.time()
        while self.ladder and self.ladder[0][0] <= now:
            _, alert_id, index = heapq.heappop(self.ladder)
            steps = [s for s in self.config.escalation if s.index == index]
            alert = self.alerts.get(alert_id)
            if not steps or alert is None:
                continue
            try:
                await self.escalate(alert, steps[0])
            except Exception as exc:  # the database or the broker is away: try this step again shortly
                self.counters["escalation_errors"] += 1
                log.warning("escalating %s failed (%s); retrying in 5 s", alert_id, type(exc).__name__)
                heapq.heappush(self.ladder, (now + 5.0, alert_id, index))

    async def escalate(self, alert: dict[str, Any], step: Step) -> None:
        alert_id = str(alert["alert_id"])
        if alert.get("state", "open") != "open" or self.states.get(alert_id) in SETTLED:
            self.counters["escalations_skipped"] += 1
            return
        action = await asyncio.to_thread(self.store.claims.of, alert_id)  # the record decides
        if action.get("state") in SETTLED:
            self.counters["escalations_skipped"] += 1
            return
        if self.ledger is not None:
            ledger, claim = self.ledger, (alert_id, f"escalation:{step.index}", "ladder")
            if claim not in await asyncio.to_thread(ledger.claim, [(claim, None, "pushed")], self.owner):
                self.counters["already_claimed"] += 1
                return
        self.counters["escalated"] += 1
        waited = round(time.time() - int(alert.get("ts_ms") or 0) / 1000)
        title, text = alert_card(alert, self.dashboard_url(), heading=f"升级（{step.label}）",
                                 extra=f"- 已 {waited} 秒无人认领，按升级规则推送")
        for name in step.channels:
            self.workers[name].offer(Push(title, text))
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        detail = {"step": step.label, "channels": list(step.channels), "after_s": step.after_s, "rule": alert["rule"]}

        await asyncio.to_thread(self.store.audit.add, "notifier", "alert.escalated", alert_id, detail)
        record = {**action, "kind": "action", "action": "escalated", "escalation": {**detail, "at": at},
                  "team_id": alert.get("team_id"), "agent_id": alert.get("agent_id"),
                  "conversation_id": alert.get("conversation_id"), "rule": alert.get("rule")}
        if self.producer is not None:
            await self.producer.send_and_wait(self.settings.topics.alert_actions, key=alert_id.encode(),
                                              value=json.dumps(record, ensure_ascii=False).encode())

    # -- running -----------------------------------------------------------------------------------------
    async def consume(self) -> None:
        topics = [self.settings.topics.alerts, self.settings.topics.alert_actions]
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, enable_auto_commit=False,
                                        fetch_max_wait_ms=100)
            try:
                await consumer.start()
                tps: list[TopicPartition] = []
                for _ in range(50):
                    await consumer.topics()
                    tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t)
                                                                                   or ())]
                    if {tp.topic for tp in tps} == set(topics):
                        break
                    await asyncio.sleep(0.2)
                consumer.assign(tps)
                await consumer.seek_to_end(*tps)
                for tp in tps:  # resolve the end positions now: what comes after this moment is read
                    await consumer.position(tp)
                self.connected = True
                while True:
                    for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                        for record in records:
                            self.on_record(tp.topic, record.value)
                    try:
                        await self.flush()
                    except Exception as exc:  # the database is away: the pending pushes wait for it
                        self.counters["ledger_errors"] += 1
                        log.warning("claiming pushes failed (%s); retrying", type(exc).__name__)
                    await self.escalate_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notifier lost the broker (%s); retrying in 2 s", type(exc).__name__)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(2.0)

    async def ladder_clock(self) -> None:
        """Escalations fall due while no record arrives too."""
        while True:
            await asyncio.sleep(0.2)
            await self.escalate_due()

    def health(self) -> dict[str, Any]:
        config = self.config
        return {"ok": self.connected and self.config_error is None, "connected": self.connected,
                "ruleset": self.book.ruleset.version, "config_error": self.config_error,
                "channels": {name: w.health() for name, w in self.workers.items() if name in config.channels},
                "routes": len(config.routes), "escalation_steps": len(config.escalation),
                "pending_escalations": len(self.ladder), "pending_pushes": len(self.pending),
                "cursor": self.cursor, **self.counters}

    async def start(self) -> list[asyncio.Task[Any]]:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, acks="all")
        await self.producer.start()
        _ = self.config
        return [asyncio.create_task(self.consume()), asyncio.create_task(self.ladder_clock()),
                asyncio.create_task(self.sweep_clock()),
                asyncio.create_task(follow(self.settings.bootstrap_servers, self.settings.topics.rules, self.book))]

    async def stop(self, tasks: list[asyncio.Task[Any]]) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for worker in self.workers.values():
            await worker.stop()
        if self.producer is not None:
            await self.producer.stop()
        await self.client.aclose()


async def run_notifier(settings: Settings, loglevel: str = "info") -> None:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    store = Database(settings.database_url)
    book = RuleBook(await asyncio.to_thread(initial_ruleset, store))  # upgrades the schema first
    notifier = Notifier(settings, store, book, ledger=store.notify)
    tasks = await notifier.start()
    app = FastAPI(title="zhijian notifier")

    @app.get("/health")
    async def health() -> JSONResponse:
        body = notifier.health()
        return JSONResponse(body, status_code=200 if body["connected"] else 503)

    host = os.environ.get("ZHIJIAN_NOTIFY_HOST", "127.0.0.1")
    port = int(os.environ.get("ZHIJIAN_NOTIFY_PORT", "6067"))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=loglevel))
    try:
        await server.serve()  # until SIGTERM / Ctrl-C
    finally:
        await notifier.stop(tasks)
        store.dispose()
