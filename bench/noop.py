"""A Faust worker whose agent does nothing: the framework's own cost per event."""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.web import Request, Response, View
from faust.worker import Worker

from stream.app import ZhijianApp
from zhijian.core.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    app: Any = ZhijianApp(
        settings.app_id, broker=settings.faust_broker, store="memory://", autodiscover=False,
        topic_partitions=settings.partitions, broker_session_timeout=6.0, broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest", web_port=settings.worker_port, web_bind="127.0.0.1",
        web_host="127.0.0.1", web_in_thread=False,
    )
    app.zhijian = settings
    stats = {"count": 0, "first_at": 0.0, "last_at": 0.0}
    topic = app.topic(settings.topics.messages, key_serializer="raw", value_serializer="raw")

    @app.agent(topic, name="noop")
    async def noop(stream: faust.StreamT[Any]) -> None:
        async for _ in stream:
            stats["count"] += 1
            stats["last_at"] = time.time()
            if not stats["first_at"]:
                stats["first_at"] = stats["last_at"]

    @app.page("/zhijian/health/")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"counters": {"processed": stats["count"], "first_at": stats["first_at"],
                                           "last_at": stats["last_at"]}})

    Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
