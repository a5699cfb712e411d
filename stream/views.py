"""The worker's own small HTTP surface (Faust web): health and live views of its tables.

Bound to ZHIJIAN_WORKER_HOST (127.0.0.1 by default) and free of customer text: the live state holds
no transcript, and the views leave out the waiting customer's excerpt (the API serves the transcript
from SQL, to signed-in users in scope).
"""

from __future__ import annotations

import time
from typing import Any

from faust.web import Request, Response, View

from stream.agents import Pipeline
from stream.engine.conversation import policy_for, snapshot
from stream.engine.state import ConversationState

PRIVATE = ("waiting_excerpt",)


def live_view(pipe: Pipeline, state: ConversationState, now_ms: int) -> dict[str, Any]:
    body = snapshot(state, policy_for(pipe.book, state.shop_id), publish=False)
    for name in PRIVATE:
        body.pop(name, None)
    since = body["waiting_since_ms"]
    body["waiting_s"] = round((now_ms - since) / 1000, 3) if since is not None else None
    body["source"] = "live"
    return body


def register(app: Any, pipe: Pipeline) -> None:
    @app.page("/zhijian/health/")
    class Health(View):
        async def get(self, request: Request) -> Response:
            assignment = sorted(
                f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment()
            ) if app.consumer is not None else []
            ruleset = pipe.book.ruleset
            body: dict[str, Any] = {
                "ok": True, "app_id": app.conf.id, "rebalancing": app.rebalancing, "assignment": assignment,
                "counters": pipe.counters.as_dict(),
                "outputs": {"sent": pipe.outbox.sent, "checkpoints": pipe.checkpoint.count,
                            "changelog_records": pipe.checkpoint.changelog_records,
                            "changelog_bytes": pipe.checkpoint.changelog_bytes},
                "ruleset": {"version": ruleset.version, "revision": ruleset.revision},
            }
            return self.json(body)

    @app.page("/zhijian/tally/")
    class TallyView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"agents": pipe.tally_views()})

    @app.page("/zhijian/conversations/")
    class ConversationsView(View):
        async def get(self, request: Request) -> Response:
            now_ms = int(time.time() * 1000)
            states = {cid: live_view(pipe, s, now_ms) for cid, s in pipe.tables.conversations.items_decoded()}
            return self.json({"conversations": states})

    @app.page("/zhijian/conversations/{conversation_id}/")
    class ConversationView(View):
        async def get(self, request: Request, conversation_id: str) -> Response:
            state = pipe.tables.conversations.value(conversation_id)
            if state is None:
                return self.json({"detail": "not on this worker"}, status=404)
            return self.json(live_view(pipe, state, int(time.time() * 1000)))
