"""Prometheus metrics of one API process: ``GET /metrics``.

Read at scrape time from the objects that already count (no per-message cost): WebSocket clients per
hub, alerts and conversation changes delivered from the topics, and clients dropped for being slow
(``Hub.dropped`` when the hub counts them), and the stream workers this process can reach. Unauthenticated
like any scrape target, and free of customer text: only counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class ApiCollector(Collector):
    def __init__(self, hubs: dict[str, Any], feeds: dict[str, Any], workers: Any = None) -> None:
        self.hubs = hubs  # name → api.feed.Hub
        self.feeds = feeds  # name → api.feed.TopicFeed
        self.workers = workers  # api.workers.Workers

    def collect(self) -> Iterator[Any]:
        clients = GaugeMetricFamily("zhijian_websocket_clients", "connected WebSocket clients", labels=["feed"])
        dropped = CounterMetricFamily("zhijian_websocket_slow_clients_dropped",
                                      "WebSocket clients disconnected for being too slow (their queue was full)",
                                      labels=["feed"])
        for name, hub in sorted(self.hubs.items()):
            clients.add_metric([name], float(getattr(hub, "subscribers", 0)))
            if isinstance(getattr(hub, "dropped", None), int):
                dropped.add_metric([name], float(hub.dropped))
        yield clients
        yield dropped
        delivered = CounterMetricFamily("zhijian_feed_records", "records read from a topic and fanned out",
                                        labels=["feed"])
        connected = GaugeMetricFamily("zhijian_feed_connected", "1 while the feed reads its topic", labels=["feed"])
        for name, feed in sorted(self.feeds.items()):
            delivered.add_metric([name], float(getattr(feed, "delivered", 0)))
            connected.add_metric([name], 1.0 if getattr(feed, "connected", False) else 0.0)
        yield delivered
        yield connected
        if self.workers is not None:
            yield GaugeMetricFamily("zhijian_workers_configured", "stream worker URLs this API asks",
                                    value=len(self.workers.urls))


def router(hubs: dict[str, Any], feeds: dict[str, Any], workers: Any = None) -> APIRouter:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApiCollector(hubs, feeds, workers))
    api = APIRouter()

    @api.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    return api
