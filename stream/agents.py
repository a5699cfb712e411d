"""The worker's agents and timers: the live pipeline.

- ``pipeline`` reads ``chat.messages``: validates (bad input → ``chat.deadletter`` with the original
  bytes and a reason), re-keys mis-partitioned events, de-duplicates by ``message_id``, runs the
  detectors and the response-time engine (``stream.engine``) and emits alerts, transcript lines,
  snapshots and tally credits.
- timers scan an in-memory index of this worker's conversations every 0.1 s and apply what is due
  (the waiting board, warning, critical, the customer gone quiet, close, purge) straight to the state.
- ``tally`` folds the published per-partition partials into the per-agent tally.
- a checkpoint before every commit (and every second) writes outputs, then the tables' changelogs.
- ``stream.persistence`` writes alerts, conversations and transcripts to SQL: the durable record.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2

from detectors import RuleBook
from stream import compat, persistence
from stream import tables as tables_module
from stream import topics as topics_module
from stream.engine.conversation import Outcome, policy_for, process_event, process_tick
from stream.engine.rebuild import rebuild
from stream.engine.records import Credit, Tick, TranscriptLine, encode_lines
from stream.engine.tally import Partial, Tally, partial_key
from stream.engine.timers import ConversationIndex
from stream.metrics import OBSERVATIONS
from stream.tables import StreamTables
from stream.topics import StreamTopics
from stream.writeback import Checkpoint, Outbox
from zhijian.core.contract import InvalidEvent, Limits, parse_event
from zhijian.core.settings import Settings
from zhijian.kafka import rules as rules_module
from zhijian.kafka.offsets import verified_end_offsets
from zhijian.store.database import Database

log = logging.getLogger(__name__)


async def end_offsets(bootstrap_servers: str, tps: list[Any]) -> dict[Any, int | None]:
    """Each partition's log end offset, corrected where the broker lists it short (Tansu)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), 10.0)
    try:
        listed = await asyncio.wait_for(consumer.end_offsets(tps), 10.0)
    finally:
        await consumer.stop()
    return await asyncio.wait_for(verified_end_offsets(bootstrap_servers, listed), 15.0)
WAITING_SCAN_S = 0.1  # customer_waiting fires within this of its threshold
HOUSEKEEPING_S = 1.0
TRANSCRIPT_FLUSH_S = 0.2  # transcript lines reach SQL within about this (plus the persist batch)
CHECKPOINT_S = 1.0  # also between commits: timer changes reach the changelog without input traffic
RESYNC_S = 5.0
RECONCILE_S = 30.0  # SQL's open/waiting conversations checked against the table (first run 30 s after start)
TRANSCRIPT_BATCH_LINES = 500
TRANSCRIPT_BATCH_BYTES = 256 * 1024
REBUILD_DAYS = 7  # after a broker that kept nothing: conversations opened this recently (and every open one) rebuilt
DEADLETTER_MAX_BYTES = 512 * 1024  # larger originals are dead-lettered truncated, with their size in a header


StoredConversations = Callable[[int, Callable[[str], bool]], list[tuple[dict[str, Any], list[dict[str, Any]]]]]


def expected_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner picks for ``key``."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def deadletter_headers(reason: str, message: Any, size: int | None = None) -> list[tuple[str, bytes]]:
    headers = [
        ("zhijian-reason", reason.encode("utf-8", "replace")),
        ("zhijian-source-topic", str(message.topic).encode()),
        ("zhijian-source-partition", str(message.partition).encode()),
        ("zhijian-source-offset", str(message.offset).encode()),
    ]
    if size is not None:
        headers.append(("zhijian-truncated-from", str(size).encode()))
    return headers


@dataclass
class Counters:
    """Process-local counters, shown on the worker's health page."""

    processed: int = 0
    deadlettered: int = 0
    duplicates: int = 0
    rekeyed: int = 0
    failed: int = 0  # events the pipeline could not process (dead-lettered with the reason)
    replayed: int = 0  # input read again after a crash or rebalance, already applied: skipped
    alerts: int = 0
    snapshots: int = 0
    lines: int = 0
    persisted: int = 0
    conversations_persisted: int = 0
    messages_persisted: int = 0
    scored: int = 0
    ticks: int = 0
    first_at: float = 0.0  # wall-clock time of the first and latest processed event
    last_at: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))


@dataclass
class TranscriptBuffer:
    """Transcript lines per input partition, produced in batches (one record carries many lines)."""

    lines: dict[int, list[TranscriptLine]] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)

    def add(self, partition: int, lines: Iterable[TranscriptLine]) -> bool:
        """Add; True when the partition's batch is full."""
        batch = self.lines.setdefault(partition, [])
        size = self.sizes.get(partition, 0)
        for line in lines:
            batch.append(line)
            size += 3 * len(line.text) + 200
        self.sizes[partition] = size
        return len(batch) >= TRANSCRIPT_BATCH_LINES or size >= TRANSCRIPT_BATCH_BYTES

    def take(self, partition: int | None = None) -> list[tuple[int, list[TranscriptLine]]]:
        keys = list(self.lines) if partition is None else [partition]
        taken = [(p, self.lines.pop(p)) for p in keys if self.lines.get(p)]
        for p in keys:
            self.sizes.pop(p, None)
        return taken


class Pipeline:
    """Everything the agents and timers share, and the synchronous steps they take."""

    def __init__(self, app: faust.App, settings: Settings, topics: StreamTopics, tables: StreamTables,
                 book: RuleBook, stored: StoredConversations | None = None) -> None:
        self.app = app
        self.settings = settings
        self.topics = topics
        self.tables = tables
        self.book = book
        self.limits = Limits(settings.max_text_chars, settings.max_future_skew_s,
                             max(64 * 1024, 4 * settings.max_text_chars + 8192))
        self.counters = Counters()
        self.outbox = Outbox(app.producer)
        self.names = settings.topics
        self.transcript = TranscriptBuffer()
        self.index = ConversationIndex(lambda shop_id: policy_for(book, shop_id))
        self.unpublished: set[str] = set()  # partial keys changed since their last publication
        self.timers_active: set[int] | None = None  # the active partitions the timer index was built for
        self.revoked: set[Any] = set()  # revoked in the rebalance under way (dropped unless assigned again)
        self.stored = stored  # what SQL kept of this worker's conversations, for a rebuild after a broker restart
        self.checked: set[int] = set()  # input partitions checked for a changelog that vanished
        self.membership: tuple[int, str | None] | None = None  # consumer-group (generation, member id) last assigned
        self.checkpoint = Checkpoint(self.outbox, tables.values(), before=self.before_checkpoint,
                                     marks=[tables.progress])

    # -- chat events --------------------------------------------------------------------------
    def handle(self, message: Any, key: bytes | None, raw: bytes | None, now_ms: int) -> None:
        """One record of chat.messages. Never raises: what cannot be processed is dead-lettered."""
        if message.partition not in self.checked:
            self.rebuild_lost({message.partition})
        progress = self.tables.progress
        partition_key = str(message.partition)
        applied = progress.value(partition_key)
        if applied is not None and message.offset <= applied:
            self.counters.replayed += 1  # already in the tables (read again after a crash or a rebalance)
            return
        progress.put(partition_key, message.offset, message.partition)
        try:
            chat = parse_event(raw, now_ms=now_ms, limits=self.limits)
        except InvalidEvent as exc:
            self.deadletter(message, key, raw, exc.reason)
            return
        try:
            partition = message.partition
            table = self.tables.conversations
            state = table.value(chat.conversation_id)
            if (state is None or state.partition != partition) and partition != expected_partition(
                    chat.conversation_id.encode(), self.settings.partitions):
                # Conversation state lives in the partition of its key: forward the original bytes
                # there (the copy is processed once, this one skipped).
                self.counters.rekeyed += 1
                self.outbox.add(self.names.messages, chat.conversation_id.encode(), raw or b"")
                return
            outcome = process_event(state, chat, now_ms=now_ms, book=self.book, partition=partition)
            if outcome.duplicate:
                self.counters.duplicates += 1
                return
            self.apply(chat.conversation_id, outcome, partition, produced_s=getattr(message, "timestamp", None))
            OBSERVATIONS.event(chat.ts_ms, now_ms)
        except Exception as exc:  # a bug must not stop the floor: the record goes to the dead-letter topic
            self.counters.failed += 1
            log.error("could not process a chat event (%s at offset %s:%s); dead-lettered", type(exc).__name__,
                      message.partition, message.offset)
            self.deadletter(message, key, raw, f"internal error while processing: {type(exc).__name__}")
            return
        counters = self.counters
        counters.processed += 1
        counters.last_at = time.time()
        if not counters.first_at:
            counters.first_at = counters.last_at

    def deadletter(self, message: Any, key: bytes | None, raw: bytes | None, reason: str) -> None:
        self.counters.deadlettered += 1
        value = raw if raw is not None else b""
        size = None
        if len(value) > DEADLETTER_MAX_BYTES:
            size, value = len(value), value[:DEADLETTER_MAX_BYTES]
        if key is not None and len(key) > 4096:
            key = key[:4096]
        self.outbox.add(self.names.deadletter, key, value, headers=deadletter_headers(reason, message, size))

    def apply(self, conversation_id: str, outcome: Outcome, partition: int, produced_s: float | None = None) -> None:
        """Emit an outcome's outputs (synchronously, into the outbox) and store its state."""
        key = conversation_id.encode("utf-8")
        names, counters = self.names, self.counters
        for alert in outcome.alerts:
            self.outbox.add(names.alerts, key, alert.to_json())
            OBSERVATIONS.alert(alert.rule, alert.severity, produced_s, time.time())
        counters.alerts += len(outcome.alerts)
        for snap in outcome.snapshots:
            self.outbox.add(names.conversations, key, persistence.encode(snap))
        counters.snapshots += len(outcome.snapshots)
        if outcome.lines:
            counters.lines += len(outcome.lines)
            if self.transcript.add(partition, outcome.lines):
                self.emit_transcript(partition)
        if any(s.get("final") for s in outcome.snapshots):
            self.emit_transcript(partition)  # a closed conversation's lines right behind its summary
        for credit in outcome.credits:
            self.credit(credit, partition)
        table = self.tables.conversations
        if outcome.delete:
            table.remove(conversation_id, partition)
            self.index.observe(conversation_id, None)
        elif outcome.changed and outcome.state is not None:
            table.put(conversation_id, outcome.state, partition)
            self.index.observe(conversation_id, outcome.state)

    def rebuild_lost(self, partitions: set[int]) -> None:
        """Partitions whose tables hold nothing — no input applied, not even a rebuild: the broker lost its changelogs
        (the embedded one keeps nothing across a restart) or this is a first start on an existing database — get
        their conversations back from SQL: open ones as states, every recent one's credits into the tally partials
        (``stream.engine.rebuild``). Runs once per partition and assignment, before its first event and its timers;
        the partition's applied offset is then -1, so a restart before any input does not rebuild twice."""
        progress = self.tables.progress
        todo = {p for p in partitions - self.checked if progress.value(str(p)) is None}
        self.checked |= partitions
        if not todo or self.stored is None:
            return
        count = self.settings.partitions

        def owned(conversation_id: str) -> bool:
            return expected_partition(conversation_id.encode(), count) in todo

        started = time.monotonic()
        try:
            found = self.stored(int(time.time() * 1000) - REBUILD_DAYS * 86_400_000, owned)
        except Exception as exc:
            log.error("rebuilding partition(s) %s from SQL failed (%s); retried shortly", sorted(todo),
                      type(exc).__name__)
            self.checked -= todo
            return
        table, opened, replayed = self.tables.conversations, 0, 0
        for stored, rows in found:
            conversation_id = str(stored["conversation_id"])
            if table.value(conversation_id) is not None:
                continue
            partition = expected_partition(conversation_id.encode(), count)
            try:
                got = rebuild(stored, rows, book=self.book, partition=partition)
            except Exception as exc:
                log.error("could not rebuild a conversation from SQL (%s)", type(exc).__name__)
                continue
            replayed += got.events
            for credit in got.credits:
                self.credit(credit, partition)
            if got.state is not None:
                table.put(conversation_id, got.state, partition)
                self.index.observe(conversation_id, got.state)
                opened += 1
        for p in todo:
            progress.put(str(p), -1, p)
        if found:
            log.info("partition(s) %s rebuilt from SQL: %d conversation(s), %d open, %d event(s) replayed in %.1f s",
                     sorted(todo), len(found), opened, replayed, time.monotonic() - started)

    def credit(self, credit: Credit, partition: int) -> None:
        key = partial_key(partition, credit.agent_id)
        partial = self.tables.partials.value(key) or Partial(credit.agent_id, partition)
        partial.credit(credit)
        self.tables.partials.put(key, partial, partition)
        self.unpublished.add(key)

    def emit_transcript(self, partition: int | None = None) -> None:
        for p, lines in self.transcript.take(partition):
            self.outbox.add(self.names.transcript, None, encode_lines(lines), partition=p)

    def before_checkpoint(self) -> None:
        """Due at every checkpoint, before the changelog: pending transcript lines and changed partials."""
        self.emit_transcript()
        for key in sorted(self.unpublished):
            partial = self.tables.partials.value(key)
            if partial is not None:
                self.outbox.add(self.names.agent_activity, partial.agent_id.encode(), partial.to_json())
        self.unpublished.clear()

    # -- timers ---------------------------------------------------------------------------------
    def active_partitions(self) -> set[int] | None:
        """Partitions of chat.messages this worker may act on now (None while rebalancing/recovering)."""
        app = self.app
        if app.rebalancing or not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return None
        topic = self.settings.topics.messages
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}

    def apply_ticks(self, ticks: list[tuple[str, Tick]], now_ms: int) -> None:
        active = self.active_partitions()
        if active is None:
            self.timers_active = None  # ticks dropped now are asked again after the rebuild (follow_assignment)
            return
        table = self.tables.conversations
        for conversation_id, tick in ticks:
            state = table.value(conversation_id)
            if state is None or state.partition not in active:
                continue
            try:
                outcome = process_tick(state, tick, now_ms=now_ms, book=self.book)
                self.apply(conversation_id, outcome, state.partition)
            except Exception as exc:
                log.error("could not apply a %s tick (%s)", tick.kind, type(exc).__name__)
            self.counters.ticks += 1

    def follow_assignment(self) -> None:
        """After a rebalance (the active partitions changed, or ticks were dropped while rebalancing): rebuild
        the timer index from the table at once, with the levels the states have reached — so a threshold
        crossed during the rebalance, here or on the worker that owned the partition before, is acted on now."""
        active = self.active_partitions()
        if active is None or active == self.timers_active:
            return
        self.rebuild_lost(active)
        self.timers_active = active
        self.index.entries.clear()
        self.index.waiting.clear()
        self.resync()

    def resync(self) -> None:
        active = self.active_partitions()
        if active is None:
            return
        self.index.resync((cid, state) for cid, state in self.tables.conversations.items_decoded()
                          if state.partition in active)

    async def on_revoked(self, revoked: set[Any]) -> None:
        """A rebalance takes partitions away (Faust revokes everything, then assigns): write everything changed
        first, so the changelog holds all this worker applied — the next owner, or this worker if it gets the
        partition back (Faust then reads only the changelog records it has not read), starts from there."""
        await self.checkpoint()
        self.revoked |= set(revoked)
        self.timers_active = None  # rebuild the timer index once the new assignment is recovered

    def on_assigned(self, assigned: set[Any]) -> None:
        """Partitions revoked and not given back: forget their keys, so nothing stale is written for them later
        and a future assignment recovers them afresh from the changelog."""
        lost, self.revoked = self.revoked - set(assigned), set()
        inputs = {tp.partition for tp in lost if tp.topic == self.settings.topics.messages}
        activity = {tp.partition for tp in lost if tp.topic == self.settings.topics.agent_activity}
        for table, partitions in ((self.tables.conversations, inputs), (self.tables.partials, inputs),
                                  (self.tables.progress, inputs), (self.tables.tally, activity)):
            if partitions:
                table.drop_partitions(partitions)
        if inputs:
            self.checked -= inputs
            self.index.forget_partitions(inputs)
            self.unpublished = {k for k in self.unpublished if int(k.split("|", 1)[0]) not in inputs}

    async def check_log_continuity(self, assigned: set[Any]) -> set[int]:
        """Input partitions whose log is shorter than what this worker applied from it: the broker lost everything
        while the worker ran (the embedded broker keeps nothing across a restart) and its offsets start again at 0,
        so the applied marks would skip every new event as already seen. Such a partition starts afresh: its
        tables are dropped and rebuilt from SQL (``rebuild_lost``), as on a first start after the loss."""
        topic = self.settings.topics.messages
        membership = compat.group_membership(self.app)
        reset, self.membership = compat.group_was_reset(self.membership, membership), membership
        marks: dict[Any, int] = {}
        for tp in assigned:
            mark = self.tables.progress.value(str(tp.partition)) if tp.topic == topic else None
            if mark is not None and mark >= 0:
                marks[tp] = mark
        if not marks:
            return set()
        if reset:  # producers may already have written more to the new log than was applied from the old one
            gone = {tp.partition for tp in marks}
        else:
            try:
                ends = await end_offsets(self.settings.bootstrap_servers, list(marks))
            except Exception as exc:  # the broker is away again: the next assignment checks again
                log.warning("could not check the input logs' end offsets (%s)", type(exc).__name__)
                return set()
            gone = {tp.partition for tp, mark in marks.items() if (end := ends.get(tp)) is not None and end <= mark}
        if gone:
            log.warning("input partition(s) %s: the broker lost its logs (%s); rebuilding them from SQL", sorted(gone),
                        "the consumer group was reset" if reset else "they end before the offsets this worker applied")
            for table in (self.tables.conversations, self.tables.partials, self.tables.progress):
                table.drop_partitions(gone)
            self.checked -= gone
            self.index.forget_partitions(gone)
            self.unpublished = {k for k in self.unpublished if int(k.split("|", 1)[0]) not in gone}
            self.rebuild_lost(gone)
            self.timers_active = None
        return gone

    def reconcile_args(self) -> tuple[Any, Any] | None:
        """(owned, held) predicates for ``Conversations.reconcile_open``, or None while rebalancing or recovering."""
        active = self.active_partitions()
        if active is None:
            return None
        partitions, table = self.settings.partitions, self.tables.conversations

        def owned(conversation_id: str) -> bool:
            return expected_partition(conversation_id.encode(), partitions) in active

        def held(conversation_id: str) -> bool:
            return table.value(conversation_id) is not None

        return owned, held

    def tally_views(self) -> dict[str, Any]:
        return {agent: tally.public_view() for agent, tally in self.tables.tally.items_decoded()}


def register(app: Any, settings: Settings) -> Pipeline:
    topics = topics_module.declare(app, settings)
    tables = tables_module.declare(app, settings)
    store = Database(settings.database_url)
    book = RuleBook(rules_module.initial_ruleset(store))
    def stored(since_ms: int, owned: Callable[[str], bool]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        conversations = store.conversations.since(since_ms, owned)
        transcripts = store.messages.transcripts(c["conversation_id"] for c in conversations)
        return [(c, transcripts[c["conversation_id"]]) for c in conversations]

    pipe = Pipeline(app, settings, topics, tables, book, stored)
    app.pipeline = pipe
    app.checkpoint = pipe.checkpoint

    @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
    async def on_revoked(app: Any, revoked: set[Any], **_: Any) -> None:
        await pipe.on_revoked(revoked)

    @app.on_partitions_assigned.connect  # type: ignore[untyped-decorator]
    async def on_assigned(app: Any, assigned: set[Any], **_: Any) -> None:
        pipe.on_assigned(assigned)
        await pipe.check_log_continuity(assigned)

    @app.agent(topics.messages, name="zhijian.pipeline")  # type: ignore[untyped-decorator]
    async def pipeline(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            pipe.handle(event.message, event.key, event.value, int(time.time() * 1000))
            if pipe.outbox.pending:
                await pipe.outbox.dispatch()

    async def run_ticks(ticks: list[tuple[str, Tick]]) -> None:
        if ticks:
            pipe.apply_ticks(ticks, int(time.time() * 1000))
            await pipe.outbox.dispatch()

    @app.timer(interval=WAITING_SCAN_S)  # type: ignore[untyped-decorator]
    async def waiting_timer() -> None:
        pipe.follow_assignment()
        await run_ticks(pipe.index.waiting_ticks(int(time.time() * 1000)))

    @app.timer(interval=HOUSEKEEPING_S)  # type: ignore[untyped-decorator]
    async def housekeeping_timer() -> None:
        await run_ticks(pipe.index.housekeeping_ticks(int(time.time() * 1000)))

    @app.timer(interval=TRANSCRIPT_FLUSH_S)  # type: ignore[untyped-decorator]
    async def transcript_timer() -> None:
        pipe.emit_transcript()
        await pipe.outbox.dispatch()

    @app.timer(interval=CHECKPOINT_S)  # type: ignore[untyped-decorator]
    async def checkpoint_timer() -> None:
        if pipe.active_partitions() is not None:
            await pipe.checkpoint()

    @app.timer(interval=RESYNC_S)  # type: ignore[untyped-decorator]
    async def resync_timer() -> None:
        pipe.resync()

    @app.timer(interval=RECONCILE_S)  # type: ignore[untyped-decorator]
    async def reconcile_timer() -> None:
        """No ghosts on the waiting board: what SQL shows open but this worker, owning it, no longer holds."""
        args = pipe.reconcile_args()
        if args is None:
            return
        owned, held = args
        at = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        try:
            closed = await asyncio.get_running_loop().run_in_executor(
                None, lambda: store.conversations.reconcile_open(owned, held, reason="no longer held by the worker",
                                                                 at_iso=at))
        except Exception as exc:
            log.error("reconciling open conversations failed (%s)", type(exc).__name__)
            return
        if closed:
            log.info("closed %d conversation(s) in SQL that no worker holds any more", closed)

    @app.task  # type: ignore[untyped-decorator]
    async def follow_rules() -> None:
        await rules_module.follow(settings.bootstrap_servers, settings.topics.rules, book)

    @app.agent(topics.agent_activity, name="zhijian.tally")  # type: ignore[untyped-decorator]
    async def tally(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            try:
                partial = Partial.from_json(event.value)
            except (ValueError, KeyError, TypeError, IndexError):
                log.warning("ignoring an unreadable tally partial at %s:%s", event.message.partition,
                            event.message.offset)
                continue
            current = tables.tally.value(partial.agent_id) or Tally(partial.agent_id)
            if current.apply(partial):
                tables.tally.put(partial.agent_id, current, event.message.partition)

    persistence.register(app, topics, store, pipe.counters, book)
    return pipe
