"""Tables whose changes reach their changelog at commit time, and the checkpoint that writes them.

A Faust table normally sends its whole value to the changelog on every assignment. Here the value
of a key is a typed object kept in memory; an assignment only marks the key dirty (with the
partition of the input it belongs to), and at every offset commit the :class:`Checkpoint` writes
each dirty key once. The order inside a checkpoint is what keeps the worker exact across crashes:

1. take, in one synchronous step, every dirty value (encoded) and every pending output;
2. produce the outputs and wait until the broker has them all — alerts, snapshots, transcript
   lines, tally partials, dead letters: everything the events behind those values caused;
3. produce the changelog records and wait for them, the progress marks (the applied input offset of
   each partition) last, once every value they vouch for is acknowledged: a crash in the middle of
   this step leaves the values ahead of the mark (their events come again and are recognised as
   duplicates), never the mark ahead of the values (its events would be skipped and lost);
4. only then does Faust commit the input offsets (``stream.compat`` calls the checkpoint first).

So a value in the changelog never gets ahead of the outputs it implies, and a committed offset
never gets ahead of the changelog. After a crash the tables come back at the last checkpoint, the
input is read again from the last commit, events already in the tables are recognised as
duplicates (their outputs were delivered), and the others are processed again — producing the same
alerts (same ids) and the same partials (same versions), which their consumers apply once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

log = logging.getLogger(__name__)
V = TypeVar("V")


class WriteBackTable(faust.Table[str, Any], Generic[V]):
    """A table of typed values: ``put``/``remove`` mark keys dirty; ``take_changes`` encodes them.

    Values recovered from the changelog are bytes until first read (decoded lazily)."""

    def __init__(self, app: faust.App, *, encode: Callable[[V], bytes], decode: Callable[[bytes], V],
                 **kwargs: Any) -> None:
        super().__init__(app, key_type=str, value_type=bytes, default=None, **kwargs)
        self._encode = encode
        self._decode = decode
        self._dirty: dict[str, int] = {}
        self._partition_of: dict[str, int] = {}  # keys set here; recovered keys are in the store's own map

    def on_key_set(self, key: Any, value: Any) -> None:  # pragma: no cover - a programming error
        raise TypeError(f"{self.name}: use put(key, value, partition), not table[key] = value")

    def on_key_del(self, key: Any) -> None:  # pragma: no cover - a programming error
        raise TypeError(f"{self.name}: use remove(key, partition), not del table[key]")

    def value(self, key: str) -> V | None:
        raw = self.data.get(key)
        if raw is None or not isinstance(raw, bytes | bytearray):
            return raw
        try:
            decoded = self._decode(bytes(raw))
        except (ValueError, KeyError, IndexError, TypeError):
            log.error("%s: dropping an undecodable value (key of %d characters)", self.name, len(key))
            self.data.pop(key, None)
            return None
        self.data[key] = decoded  # decoded once; not a change
        return decoded

    def put(self, key: str, value: V, partition: int) -> None:
        self.data[key] = value
        self._dirty[key] = partition
        self._partition_of[key] = partition

    def remove(self, key: str, partition: int) -> None:
        self.data.pop(key, None)
        self._dirty[key] = partition
        self._partition_of.pop(key, None)

    def partition_of(self, key: str) -> int | None:
        known = self._partition_of.get(key)
        if known is not None:
            return known
        recovered: dict[str, int] = getattr(self.data, "_key_partition", {})
        return recovered.get(key)

    def drop_partitions(self, partitions: set[int]) -> int:
        """Forget the keys of partitions this worker no longer owns (after a checkpoint wrote them): their
        new owner writes the changelog now, and a later assignment recovers them afresh."""
        dropped = [key for key in list(self.data.keys()) if self.partition_of(key) in partitions]
        for key in dropped:
            self.data.pop(key, None)
            self._partition_of.pop(key, None)
        self._dirty = {k: p for k, p in self._dirty.items() if p not in partitions}
        return len(dropped)

    def items_decoded(self) -> Iterator[tuple[str, V]]:
        for key in list(self.data.keys()):
            value = self.value(key)
            if value is not None:
                yield key, value

    @property
    def dirty(self) -> int:
        return len(self._dirty)

    def take_changes(self) -> list[tuple[str, int, bytes | None]]:
        """Every dirty key's current value, encoded now (a tombstone for a removed key)."""
        changes: list[tuple[str, int, bytes | None]] = []
        for key, partition in self._dirty.items():
            value = self.data.get(key)
            if value is None:
                changes.append((key, partition, None))
            else:
                changes.append((key, partition, value if isinstance(value, bytes) else self._encode(value)))
        self._dirty = {}
        return changes

    def restore_changes(self, changes: list[tuple[str, int, bytes | None]]) -> None:
        """A checkpoint failed: its keys are dirty again (unless changed since, which keeps the newer mark)."""
        for key, partition, _ in changes:
            self._dirty.setdefault(key, partition)

    def send_changes(self, changes: list[tuple[str, int, bytes | None]]) -> list[asyncio.Future[Any]]:
        return [self.send_changelog(partition, key, value, value_serializer="raw")
                for key, partition, value in changes]


@dataclass(slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    headers: list[tuple[str, bytes]] | None = None


class Outbox:
    """Outputs in the order they were made. ``add`` is synchronous, so an event's outputs are in the
    outbox the moment its state changes; ``dispatch`` hands them to the producer (fast path for
    latency), ``drain`` also waits until the broker has every one of them.

    ``producer`` is Faust's transport producer (``app.producer``): its ``send`` goes straight to the
    Kafka client, without the per-message bookkeeping of ``Topic.send``."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.pending: deque[Record] = deque()
        self.inflight: list[asyncio.Future[Any]] = []
        self.sent = 0
        self.failed = 0  # records the producer refused (too large, unknown topic): logged and dropped
        self._lock = asyncio.Lock()

    def add(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None,
            headers: list[tuple[str, bytes]] | None = None) -> None:
        self.pending.append(Record(topic, key, value, partition, headers))

    async def dispatch(self) -> None:
        async with self._lock:
            while self.pending:
                record = self.pending[0]
                try:
                    future = await self.producer.send(record.topic, record.key, record.value, record.partition,
                                                      None, record.headers)
                except Exception as exc:  # refused outright: never let one record stop the stream
                    self.failed += 1
                    log.error("the producer refused a record for %s (%d bytes): %s", record.topic,
                              len(record.value), type(exc).__name__)
                else:
                    self.inflight.append(future)
                    self.sent += 1
                self.pending.popleft()
            if len(self.inflight) > 10_000:  # keep the list short between checkpoints
                self.inflight = [f for f in self.inflight if not f.done()]

    async def drain(self) -> None:
        await self.dispatch()
        async with self._lock:
            futures, self.inflight = self.inflight, []
        if futures:
            for result in await asyncio.gather(*futures, return_exceptions=True):
                if isinstance(result, MessageSizeTooLargeError | RecordTooLargeError):
                    self.failed += 1  # this record can never be delivered: logged and dropped
                    log.error("a record was too large to deliver: %s", type(result).__name__)
                elif isinstance(result, BaseException):
                    raise result  # anything else: no checkpoint, no commit; the events are processed again


class Checkpoint:
    """Runs before every offset commit: outputs first, then the changelog (see the module doc)."""

    def __init__(self, outbox: Outbox, tables: list[WriteBackTable[Any]],
                 before: Callable[[], None] | None = None, marks: list[WriteBackTable[Any]] | None = None) -> None:
        self.outbox = outbox
        self.tables = tables
        self.marks = marks or []  # written only after every record of ``tables`` is acknowledged
        self.before = before  # adds what is due at a checkpoint (transcript batches, tally partials)
        self.count = 0
        self.changelog_records = 0
        self.changelog_bytes = 0
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        async with self._lock:
            if self.before is not None:
                self.before()
            values = [(table, table.take_changes()) for table in self.tables]
            marks = [(table, table.take_changes()) for table in self.marks]
            changes = values + marks
            try:
                await self.outbox.drain()
                for group in (values, marks):
                    futures: list[asyncio.Future[Any]] = []
                    for table, table_changes in group:
                        futures.extend(table.send_changes(table_changes))
                    if futures:
                        await asyncio.gather(*futures)
            except BaseException:
                for table, table_changes in changes:  # failed or cancelled: those keys are still to be written
                    table.restore_changes(table_changes)
                raise
            for _, table_changes in changes:
                self.changelog_records += len(table_changes)
                self.changelog_bytes += sum(len(v or b"") + len(k) for k, _, v in table_changes)
            self.count += 1
