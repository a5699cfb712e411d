"""The worker's own small HTTP surface (Faust web): health and live table views."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from stream.tally import public_view


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

    @app.page("/zhijian/conversations/")
    class ConversationsView(View):
        async def get(self, request: Request) -> Response:
            table = app.zhijian_tables.conversations  # type: ignore[attr-defined]
            states = {cid: {k: v for k, v in s.items() if k != "seen"} | {"messages": len(s["seen"])}
                      for cid, s in table.items()}
            return self.json({"conversations": states})
