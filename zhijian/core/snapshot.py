"""The conversation snapshot on ``chat.conversations`` and its closing summary, as typed records.

The worker's engine makes them (``stream.engine.conversation.snapshot``), SQL keeps them, scoring reads the
summary, the API and the waiting board show them. On the topic and in SQL they are JSON objects with exactly
these keys; inside the processes they are these TypedDicts, so a misspelt or missing key fails ``mypy``."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class TransferView(TypedDict):
    ts_ms: int
    from_agent: str | None
    to_agent: str | None
    gap_s: float | None


class MessageCounts(TypedDict):
    customer: int
    agent: int
    bot: int


class Metrics(TypedDict):
    """Response-time figures of the conversation so far (``stream.engine.turns.Machine.as_dict``)."""

    first_customer_ms: int | None
    first_response_s: float | None
    first_response_agent: str | None
    first_response_points: float | None
    response_times_s: list[float | None]  # the first 20 answers
    response_starts_ms: list[int | None]  # when each of those answered turns began
    response_agents: list[str | None]
    responses: int  # every answer with a response time (the mean's count)
    avg_response_s: float | None
    avg_response_points: float | None
    reply_rate: float | None
    reply_rate_points: float | None
    turns: int
    answered_turns: int
    waiting_since_ms: int | None
    first_customer_offline: bool  # the platform's 留言 marks (24-hour rule)
    offline_turn_starts_ms: list[int]
    waiting_offline: bool
    owner: str | None
    agents: list[str]
    transfers: list[TransferView]
    messages: MessageCounts
    after_sales: bool


class Checks(TypedDict):
    """The conversation-level checks of a closing summary (开头语, 结束语, 礼貌用语)."""

    greeting: Any
    closing: Any
    politeness_rate: float | None
    politeness_points: float | None
    findings: list[dict[str, Any]]


class Snapshot(TypedDict):
    """The conversation as the board, the API and scoring see it; ``final`` marks the closing summary."""

    conversation_id: str
    shop_id: str
    team_id: str | None
    agent_id: str | None
    assigned_agent: str | None
    status: str
    version: int
    final: bool
    opened_ms: int | None
    closed_ms: int | None
    close_reason: str | None
    last_event_ms: int | None
    waiting_since_ms: int | None
    waiting_level: int
    waiting_message_id: str | None
    last_customer_ms: int | None
    waiting_excerpt: str | None
    customer_gone: bool
    customer_gone_after_s: float
    late_events: int
    labels: dict[str, int]
    metrics: Metrics | None
    waiting_since: str | None
    checks: NotRequired[Checks | None]  # the closing summary only
    offline_expired_ms: NotRequired[int]  # closed because its 24 hours ran out unanswered
