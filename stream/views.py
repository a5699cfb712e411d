"""The worker's own small HTTP surface (Faust web): health and live table views."""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.web import Request, Response, View

from stream.pipeline import policy_for, snapshot
from stream.tally import public_view
from stream.timing import compute


def register(app: faust.App) -> None:
    @app.page("/zhijian/health/")
    class Health(View):
        async def get(self, request: Request) -> Response:
            assignment = sorted(
                f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment()
            ) if app.consumer is not None else []
            body: dict[str, Any] = {
                "ok": True,
                "app_id": app.conf.id,
                "rebalancing": app.rebalancing,
                "assignment": assignment,
                "counters": app.zhijian_counters.as_dict(),  # type: ignore[attr-defined]
                "ruleset": {
                    "version": app.zhijian_rulebook.ruleset.version,  # type: ignore[attr-defined]
                    "revision": app.zhijian_rulebook.ruleset.revision,  # type: ignore[attr-defined]
                },
            }
            return self.json(body)

    @app.page("/zhijian/tally/")
    class TallyView(View):
        async def get(self, request: Request) -> Response:
            table = app.zhijian_tables.agent_tally  # type: ignore[attr-defined]
            tallies = {agent: public_view(value) for agent, value in table.items()}
            return self.json({"agents": tallies})

    def live_view(state: dict[str, Any], now_ms: int) -> dict[str, Any]:
        book = app.zhijian_rulebook  # type: ignore[attr-defined]
        policy = policy_for(book, state["shop_id"])
        metrics = compute(state["log"], policy, initial_owner=state["first_agent"])
        body = snapshot(dict(state), metrics, policy, with_transcript=True, publish=False)
        since = body["waiting_since_ms"]
        body["waiting_s"] = round((now_ms - since) / 1000, 3) if since is not None else None
        body["source"] = "live"
        return body

    @app.page("/zhijian/conversations/")
    class ConversationsView(View):
        async def get(self, request: Request) -> Response:
            table = app.zhijian_tables.conversations  # type: ignore[attr-defined]
            now_ms = int(time.time() * 1000)
            states = {cid: {k: v for k, v in live_view(s, now_ms).items() if k != "transcript"}
                      for cid, s in table.items()}
            return self.json({"conversations": states})

    @app.page("/zhijian/conversations/{conversation_id}/")
    class ConversationView(View):
        async def get(self, request: Request, conversation_id: str) -> Response:
            state = app.zhijian_tables.conversations.get(conversation_id)  # type: ignore[attr-defined]
            if state is None:
                return self.json({"detail": "not on this worker"}, status=404)
            return self.json(live_view(state, int(time.time() * 1000)))
