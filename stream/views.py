"""The worker's own small HTTP surface (Faust web): health and live views of its tables.

Bound to ZHIJIAN_WORKER_HOST (127.0.0.1 by default) and free of customer text: the live state holds
no transcript, and the views leave out the waiting customer's excerpt (the API serves the transcript
from SQL, to signed-in users in scope).

With several workers in one group a worker's tables also hold keys it does not own (standby replicas,
and values left behind by a partition that moved away). The views answer only for partitions this
worker owns *now*: one conversation or agent of another partition gets 421 (misdirected: ask the
owner), and anything while rebalancing or recovering gets 503 — never a stale answer. The lists leave
out what the worker does not own and say which partitions they cover.
"""

from __future__ import annotations

import time
from typing import Any

from faust.web import Request, Response, View

from stream import metrics
from stream.agents import Pipeline, expected_partition
from stream.engine.conversation import policy_for, snapshot
from stream.engine.state import ConversationState

PRIVATE = ("waiting_excerpt",)
RETRY_AFTER_S = 2
MISDIRECTED = 421


def live_view(pipe: Pipeline, state: ConversationState, now_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = dict(snapshot(state, policy_for(pipe.book, state.shop_id), publish=False))
    for name in PRIVATE:
        body.pop(name, None)
    since = body["waiting_since_ms"]
    body["waiting_s"] = round((now_ms - since) / 1000, 3) if since is not None else None
    body["source"] = "live"
    return body


def owned(app: Any, topic: str) -> set[int] | None:
    """Partitions of ``topic`` this worker actively owns now; None while rebalancing or recovering."""
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        return None
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def register(app: Any, pipe: Pipeline) -> None:
    names = pipe.settings.topics
    partitions = pipe.settings.partitions

    def unavailable(view: View) -> Response:
        return view.json({"detail": "this worker is rebalancing or recovering its tables; retry shortly",
                          "retry_after_s": RETRY_AFTER_S}, status=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    def misdirected(view: View, topic: str, partition: int) -> Response:
        return view.json({"detail": f"partition {topic}:{partition} is not owned by this worker",
                          "partition": partition}, status=MISDIRECTED)

    @app.page("/zhijian/health/")
    class Health(View):
        async def get(self, request: Request) -> Response:
            assignment = sorted(
                f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment()
            ) if app.consumer is not None else []
            ready = owned(app, names.messages) is not None
            actives = sorted(f"{tp.topic}:{tp.partition}" for tp in app.assignor.assigned_actives()
                             if tp.topic in (names.messages, names.agent_activity)) if ready else []
            ruleset = pipe.book.ruleset
            body: dict[str, Any] = {
                "ok": True, "app_id": app.conf.id, "rebalancing": app.rebalancing, "assignment": assignment,
                "ready": ready, "owns": actives, "partitions": partitions,
                "counters": pipe.counters.as_dict(),
                "outputs": {"sent": pipe.outbox.sent, "checkpoints": pipe.checkpoint.count,
                            "changelog_records": pipe.checkpoint.changelog_records,
                            "changelog_bytes": pipe.checkpoint.changelog_bytes},
                "ruleset": {"version": ruleset.version, "revision": ruleset.revision},
            }
            return self.json(body)

    @app.page("/healthz")
    class Ready(View):
        """Readiness: 200 once the worker owns partitions and has recovered its tables, 503 meanwhile."""

        async def get(self, request: Request) -> Response:
            mine = owned(app, names.messages)
            if mine is None:
                return unavailable(self)
            return self.json({"ok": True, "partitions": sorted(mine)})

    registry = metrics.registry_for(app, pipe)

    @app.page("/metrics")
    class Metrics(View):
        """Prometheus exposition: counters, consumer lag, latency histograms (no customer text)."""

        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.exposition(registry), content_type=metrics.CONTENT_TYPE)

    @app.page("/zhijian/tally/")
    class TallyView(View):
        async def get(self, request: Request) -> Response:
            mine = owned(app, names.agent_activity)
            if mine is None:
                return unavailable(self)
            agents = {agent: tally.public_view() for agent, tally in pipe.tables.tally.items_decoded()
                      if expected_partition(agent.encode(), partitions) in mine}
            return self.json({"agents": agents, "partitions": sorted(mine)})

    @app.page("/zhijian/tally/{agent_id}/")
    class AgentTallyView(View):
        async def get(self, request: Request, agent_id: str) -> Response:
            mine = owned(app, names.agent_activity)
            if mine is None:
                return unavailable(self)
            partition = expected_partition(agent_id.encode(), partitions)
            if partition not in mine:
                return misdirected(self, names.agent_activity, partition)
            tally = pipe.tables.tally.value(agent_id)
            if tally is None:
                return self.json({"detail": "no tally for this agent"}, status=404)
            return self.json(tally.public_view())

    @app.page("/zhijian/conversations/")
    class ConversationsView(View):
        async def get(self, request: Request) -> Response:
            mine = owned(app, names.messages)
            if mine is None:
                return unavailable(self)
            now_ms = int(time.time() * 1000)
            states = {cid: live_view(pipe, s, now_ms) for cid, s in pipe.tables.conversations.items_decoded()
                      if s.partition in mine}
            return self.json({"conversations": states, "partitions": sorted(mine)})

    @app.page("/zhijian/conversations/{conversation_id}/")
    class ConversationView(View):
        async def get(self, request: Request, conversation_id: str) -> Response:
            mine = owned(app, names.messages)
            if mine is None:
                return unavailable(self)
            partition = expected_partition(conversation_id.encode(), partitions)
            if partition not in mine:
                return misdirected(self, names.messages, partition)
            state = pipe.tables.conversations.value(conversation_id)
            if state is None:
                return self.json({"detail": "not on this worker"}, status=404)
            return self.json(live_view(pipe, state, int(time.time() * 1000)))
