"""The metrics collectors: what a scrape shows for known counters and observations."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.feed import Hub
from api.metrics import ApiCollector
from stream.agents import Counters
from stream.metrics import SAMPLE_EVERY, Observations, registry_for
from zhijian.core.settings import Settings


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode()) for s in family.samples}


def test_the_worker_page_reads_counters_observations_and_lag_at_scrape_time() -> None:
    counters = Counters(processed=120, deadlettered=3, duplicates=7)
    tp = TopicPartition("chat.messages", 2)
    consumer = SimpleNamespace(_read_offset={tp: 89}, highwater=lambda _tp: 100)  # read up to 89 of 0..99
    app = SimpleNamespace(consumer=consumer, assignor=SimpleNamespace(assigned_actives=lambda: [tp]))
    pipe = SimpleNamespace(counters=counters, settings=Settings(), active_partitions=lambda: {2},
                           tables=SimpleNamespace(conversations=SimpleNamespace(data={"c1": b"", "c2": b""})))
    obs = Observations()
    for n in range(SAMPLE_EVERY * 3):
        obs.event(event_ts_ms=1000, now_ms=1000 + 40 * n)  # sampled: 3 of them
    obs.alert("conflict", "critical", produced_s=100.0, now_s=100.2)
    obs.alert("conflict", "critical", produced_s=None, now_s=101.0)  # a timer's alert: counted, no latency
    obs.sql("alerts", 0.004)
    registry = registry_for(app, pipe, obs)
    got = samples(generate_latest(registry))
    assert got[("zhijian_events_processed_total", ())] == 120
    assert got[("zhijian_events_deadlettered_total", ())] == 3
    assert got[("zhijian_events_duplicate_total", ())] == 7
    counters.processed += 5  # read again at the next scrape, nothing registered per event
    assert samples(generate_latest(registry))[("zhijian_events_processed_total", ())] == 125
    assert got[("zhijian_consumer_lag", (("partition", "2"),))] == 10
    assert got[("zhijian_alerts_total", (("rule", "conflict"), ("severity", "critical")))] == 2
    assert got[("zhijian_alert_latency_seconds_count", ())] == 1
    assert got[("zhijian_alert_latency_seconds_bucket", (("le", "0.25"),))] == 1
    assert got[("zhijian_alert_latency_seconds_bucket", (("le", "0.1"),))] == 0
    assert got[("zhijian_event_latency_seconds_count", ())] == 3
    assert got[("zhijian_event_latency_seconds_bucket", (("le", "+Inf"),))] == 3
    assert got[("zhijian_sql_write_seconds_count", (("what", "alerts"),))] == 1
    assert got[("zhijian_sql_write_seconds_bucket", (("le", "0.005"), ("what", "alerts")))] == 1
    assert got[("zhijian_partitions_owned", ())] == 1 and got[("zhijian_live_conversations", ())] == 2


def test_the_api_page_counts_websocket_clients_per_hub() -> None:
    alerts, conversations = Hub(), Hub()
    alerts.subscribe()
    alerts.subscribe()
    conversations.subscribe()
    feed = SimpleNamespace(delivered=42, connected=True)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApiCollector({"alerts": alerts, "conversations": conversations}, {"alerts": feed}))
    got = samples(generate_latest(registry))
    assert got[("zhijian_websocket_clients", (("feed", "alerts"),))] == 2
    assert got[("zhijian_websocket_clients", (("feed", "conversations"),))] == 1
    assert got[("zhijian_feed_records_total", (("feed", "alerts"),))] == 42
    assert got[("zhijian_feed_connected", (("feed", "alerts"),))] == 1
