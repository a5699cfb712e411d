"""The worker's tables: live state, restored from changelog topics after a restart.

- ``conversations``: conversation_id → :class:`~stream.engine.state.ConversationState`
- ``partials``: "<partition>|<agent_id>" → :class:`~stream.engine.tally.Partial` (one agent's totals from
  one partition of chat.messages, kept next to the conversations of that partition)
- ``tally``: agent_id → :class:`~stream.engine.tally.Tally` (from the published partials)
- ``progress``: partition of chat.messages → the highest input offset applied to the tables above; a replay after
  a crash skips what the tables already hold, whatever the conversation (the id ring covers producer duplicates)
All four write their changelog at checkpoints (``stream.writeback``), not on every change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from stream.engine.state import ConversationState
from stream.engine.tally import Partial, Tally
from stream.writeback import WriteBackTable
from zhijian.core.settings import Settings


@dataclass(frozen=True)
class StreamTables:
    conversations: WriteBackTable[ConversationState]
    partials: WriteBackTable[Partial]
    tally: WriteBackTable[Tally]
    progress: WriteBackTable[int]

    def values(self) -> list[WriteBackTable[Any]]:
        """The tables whose records ``progress`` vouches for (a checkpoint writes ``progress`` after them)."""
        return [self.conversations, self.partials, self.tally]


def declare(app: faust.App, settings: Settings) -> StreamTables:
    def table(name: str, help_: str, encode: Any, decode: Any) -> WriteBackTable[Any]:
        made: WriteBackTable[Any] = WriteBackTable(app, name=name, partitions=settings.partitions, help=help_,
                                                   encode=encode, decode=decode, beacon=app.tables.beacon)
        app.tables.add(made)
        return made

    return StreamTables(
        conversations=table("conversations", "per-conversation state, keyed by conversation_id",
                            ConversationState.to_json, ConversationState.from_json),
        partials=table("agent-partials", "per-agent totals of one input partition, keyed partition|agent_id",
                       Partial.to_json, Partial.from_json),
        tally=table("agent-tally", "per-agent running tally, keyed by agent_id",
                    Tally.to_json, Tally.from_json),
        progress=table("progress", "highest applied offset of each chat.messages partition",
                       lambda offset: str(offset).encode(), lambda raw: int(raw)),
    )
