"""The checkpoint's order: outputs, then the tables' changelog records, then the progress marks — and what a
checkpoint cut off in the middle leaves behind."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from stream.writeback import Checkpoint

Change = tuple[str, int, bytes | None]


class RecordingTable:
    """Stands in for a WriteBackTable: hands out its changes once and records each changelog send."""

    def __init__(self, name: str, changes: list[Change], sent: list[tuple[str, str]],
                 futures: list[asyncio.Future[Any]]) -> None:
        self.name, self.changes, self.sent, self.futures = name, changes, sent, futures
        self.restored: list[Change] = []

    def take_changes(self) -> list[Change]:
        changes, self.changes = self.changes, []
        return changes

    def restore_changes(self, changes: list[Change]) -> None:
        self.restored.extend(changes)

    def send_changes(self, changes: list[Change]) -> list[asyncio.Future[Any]]:
        made = []
        for key, _, _ in changes:
            self.sent.append((self.name, key))
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.futures.append(future)
            made.append(future)
        return made


class DrainedOutbox:
    drained = 0

    async def drain(self) -> None:
        self.drained += 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_progress_marks_are_written_only_after_every_value_is_acknowledged() -> None:
    sent: list[tuple[str, str]] = []
    futures: list[asyncio.Future[Any]] = []
    conversations = RecordingTable("conversations", [("conv-1", 0, b"a"), ("conv-2", 0, b"b")], sent, futures)
    progress = RecordingTable("progress", [("0", 0, b"41")], sent, futures)
    outbox = DrainedOutbox()
    checkpoint = Checkpoint(cast(Any, outbox), [cast(Any, conversations)], marks=[cast(Any, progress)])

    running = asyncio.create_task(checkpoint())
    await settle()
    assert outbox.drained == 1
    assert sent == [("conversations", "conv-1"), ("conversations", "conv-2")]  # no mark while values are in flight
    futures[0].set_result(None)
    await settle()
    assert ("progress", "0") not in sent  # one value still unacknowledged
    futures[1].set_result(None)
    await settle()
    assert sent[-1] == ("progress", "0")
    assert not running.done()  # and the checkpoint waits for the mark itself
    futures[2].set_result(None)
    await running
    assert checkpoint.count == 1 and checkpoint.changelog_records == 3


async def test_a_checkpoint_cut_off_before_its_values_land_writes_no_mark_and_keeps_everything_dirty() -> None:
    sent: list[tuple[str, str]] = []
    futures: list[asyncio.Future[Any]] = []
    conversations = RecordingTable("conversations", [("conv-1", 0, b"a")], sent, futures)
    progress = RecordingTable("progress", [("0", 0, b"41")], sent, futures)
    checkpoint = Checkpoint(cast(Any, DrainedOutbox()), [cast(Any, conversations)], marks=[cast(Any, progress)])

    running = asyncio.create_task(checkpoint())
    await settle()
    running.cancel()  # the worker is stopped or the broker fails mid-checkpoint
    await asyncio.gather(running, return_exceptions=True)
    assert ("progress", "0") not in sent
    assert conversations.restored == [("conv-1", 0, b"a")] and progress.restored == [("0", 0, b"41")]
    assert checkpoint.count == 0
