"""The Faust application: configuration and wiring.

Layout follows faust's fastapi example in spirit: the app here, topics and tables in
their own modules, agents in ``stream.agents``, worker web views in ``stream.views``.
"""

from __future__ import annotations

from typing import Any

import faust

from stream.compat import VerifiedEndOffsetsTransport
from zhijian.core.settings import Settings


class ZhijianApp(faust.App):
    """A Faust app that knows its zhijian settings and may carry the end-offset shim."""

    zhijian: Settings
    pipeline: Any = None  # stream.agents.Pipeline, once registered
    checkpoint: Any = None  # awaited before every offset commit (stream.writeback.Checkpoint)

    @property
    def fetch_max_wait_ms(self) -> int:
        return self.zhijian.fetch_max_wait_ms

    def _new_transport(self) -> Any:
        # always ours: the checkpoint before each commit and the short fetch wait live there; the end-offset
        # check itself is skipped when ZHIJIAN_END_OFFSET_SHIM=off
        return VerifiedEndOffsetsTransport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> ZhijianApp:
    app = ZhijianApp(
        settings.app_id,
        broker=settings.faust_broker,
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        # Local Tansu waits half the session timeout on every group join.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        producer_linger_ms=settings.producer_linger_ms,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        web_enabled=True,
        web_bind=settings.worker_host,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        web_in_thread=False,
        datadir=str(settings.data_dir / "faust"),
    )
    app.zhijian = settings
    # Importing registers topics, tables, agents and views on this app.
    from stream import agents, views

    pipe = agents.register(app, settings)
    views.register(app, pipe)
    return app
