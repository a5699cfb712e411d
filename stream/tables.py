"""Faust tables: live state, restored from changelog topics after a restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from zhijian.settings import Settings


@dataclass(frozen=True)
class StreamTables:
    conversations: Any  # conversation_id -> state dict (stream.pipeline)
    agent_tally: Any  # agent_id -> tally dict (stream.tally)


def declare(app: faust.App, settings: Settings) -> StreamTables:
    def table(name: str, help_: str) -> Any:
        return app.Table(
            name,
            default=None,
            partitions=settings.partitions,
            key_type=str,
            help=help_,
        )

    return StreamTables(
        conversations=table("conversations", "per-conversation state, keyed by conversation_id"),
        agent_tally=table("agent-tally", "per-agent running tally, keyed by agent_id"),
    )
