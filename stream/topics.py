"""Topic declarations. Values are raw bytes: we parse and validate them ourselves."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from zhijian.core.settings import Settings


@dataclass(frozen=True)
class StreamTopics:
    messages: TopicT
    alerts: TopicT
    deadletter: TopicT
    agent_activity: TopicT
    conversations: TopicT
    transcript: TopicT


def declare(app: faust.App, settings: Settings) -> StreamTopics:
    def raw(name: str) -> TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=settings.partitions)

    names = settings.topics
    return StreamTopics(
        messages=raw(names.messages),
        alerts=raw(names.alerts),
        deadletter=raw(names.deadletter),
        agent_activity=raw(names.agent_activity),
        conversations=raw(names.conversations),
        transcript=raw(names.transcript),
    )
