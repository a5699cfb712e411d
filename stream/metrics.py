"""Prometheus metrics of a worker, read at scrape time.

The pipeline keeps plain integer counters (``stream.agents.Counters``); a custom collector turns them
into Prometheus series only when ``/metrics`` is scraped, so the hot path pays nothing for them. The few
things not in the counters are kept here, as cheaply as the hot path allows:

- alerts by rule and severity: a dict of ints, added to once per alert (alerts are rare);
- latency histograms (event time → processed; Kafka produce timestamp → alert handed to the producer;
  SQL write time): fixed buckets, one bisect and two additions per observation; the event-time latency
  is sampled (one event in ``SAMPLE_EVERY``), the others are observed on every alert or SQL batch.

Consumer lag per partition is read from the worker's consumer at scrape time: the partition's high
watermark minus the next offset the worker will read.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4"  # the text format generate_latest writes (aiohttp: no charset here)
SAMPLE_EVERY = 16  # event-time latency: one event in this many
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
SQL_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Buckets:
    """A histogram without locks or labels: cumulative only when collected."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class Observations:
    """What the pipeline and the SQL writers report beyond their counters (see the module doc)."""

    def __init__(self) -> None:
        self.alerts: dict[tuple[str, str], int] = {}
        self.event_latency = Buckets(LATENCY_BUCKETS_S)
        self.alert_latency = Buckets(LATENCY_BUCKETS_S)
        self.sql_write: dict[str, Buckets] = {}
        self._seen = 0

    def event(self, event_ts_ms: int, now_ms: int) -> None:
        """A processed event: its event time → now, sampled."""
        self._seen += 1
        if self._seen % SAMPLE_EVERY == 0:
            self.event_latency.observe(max(0.0, (now_ms - event_ts_ms) / 1000))

    def alert(self, rule: str, severity: str, produced_s: float | None, now_s: float) -> None:
        """An alert handed to the producer; ``produced_s`` is the Kafka timestamp of the event behind it."""
        key = (rule, severity)
        self.alerts[key] = self.alerts.get(key, 0) + 1
        if produced_s is not None and produced_s > 0:
            self.alert_latency.observe(max(0.0, now_s - produced_s))

    def sql(self, what: str, seconds: float) -> None:
        buckets = self.sql_write.get(what)
        if buckets is None:
            buckets = self.sql_write[what] = Buckets(SQL_BUCKETS_S)
        buckets.observe(seconds)


OBSERVATIONS = Observations()  # one per worker process


def histogram(name: str, doc: str, buckets: Buckets, labels: dict[str, str] | None = None,
              family: HistogramMetricFamily | None = None) -> HistogramMetricFamily:
    family = family or HistogramMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), buckets.cumulative(), buckets.total)
    return family


def consumer_lag(app: Any, topic: str) -> dict[int, int]:
    """Per active partition of ``topic``: high watermark minus the next offset to read (0 if unknown)."""
    consumer = getattr(app, "consumer", None)
    if consumer is None:
        return {}
    lag: dict[int, int] = {}
    try:
        actives = [tp for tp in app.assignor.assigned_actives() if tp.topic == topic]
        read = consumer._read_offset  # faust: the last offset read per partition (None before the first)
        for tp in actives:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            last = read.get(tp)
            lag[tp.partition] = max(0, int(highwater) - (int(last) + 1 if last is not None else 0))
    except Exception:  # a scrape during a rebalance: no lag rather than no metrics
        return lag
    return lag


class WorkerCollector(Collector):
    """Reads the pipeline's counters, the observations and the consumer's offsets at scrape time."""

    def __init__(self, app: Any, pipe: Any, observations: Observations = OBSERVATIONS) -> None:
        self.app = app
        self.pipe = pipe
        self.observations = observations

    def collect(self) -> Iterator[Any]:
        c = self.pipe.counters
        for name, value, doc in (
            ("zhijian_events_processed", c.processed, "chat events processed"),
            ("zhijian_events_deadlettered", c.deadlettered, "chat events sent to the dead-letter topic"),
            ("zhijian_events_duplicate", c.duplicates, "chat events recognised as duplicates (by message_id)"),
            ("zhijian_events_rekeyed", c.rekeyed, "chat events forwarded to the partition of their conversation"),
            ("zhijian_events_failed", c.failed, "chat events the pipeline could not process (dead-lettered)"),
            ("zhijian_waiting_ticks", c.ticks, "waiting and housekeeping timer ticks applied"),
            ("zhijian_sql_alerts_written", c.persisted, "alert rows written to SQL"),
            ("zhijian_sql_messages_written", c.messages_persisted, "transcript rows written to SQL"),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        alerts = CounterMetricFamily("zhijian_alerts", "alerts raised (each revision counts)",
                                     labels=["rule", "severity"])
        for (rule, severity), count in sorted(self.observations.alerts.items()):
            alerts.add_metric([rule, severity], count)
        yield alerts
        lag = GaugeMetricFamily("zhijian_consumer_lag", "records of chat.messages not yet read, per partition",
                                labels=["partition"])
        for partition, value in sorted(consumer_lag(self.app, self.pipe.settings.topics.messages).items()):
            lag.add_metric([str(partition)], value)
        yield lag
        owned = GaugeMetricFamily("zhijian_partitions_owned", "partitions of chat.messages this worker owns now")
        owned.add_metric([], len(self.pipe.active_partitions() or ()))
        yield owned
        yield GaugeMetricFamily("zhijian_rebalancing", "1 while the worker is rebalancing or recovering",
                                value=1 if self.pipe.active_partitions() is None else 0)
        yield GaugeMetricFamily("zhijian_live_conversations", "conversations in this worker's table (incl. standby)",
                                value=len(self.pipe.tables.conversations.data))
        yield histogram("zhijian_event_latency_seconds", "event time → processed (sampled)",
                        self.observations.event_latency)
        yield histogram("zhijian_alert_latency_seconds",
                        "Kafka produce time of the event → its alert handed to the producer",
                        self.observations.alert_latency)
        sql = HistogramMetricFamily("zhijian_sql_write_seconds", "one batched SQL write, by kind", labels=["what"])
        for what, buckets in sorted(self.observations.sql_write.items()):
            histogram("", "", buckets, {"what": what}, family=sql)
        yield sql


def registry_for(app: Any, pipe: Any, observations: Observations = OBSERVATIONS) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(app, pipe, observations))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
