"""Runtime settings, read once from the environment.

Every process (broker launcher, worker, API, simulator) reads the same variables,
so the same code runs against the embedded broker and against Apache Kafka +
PostgreSQL just by changing URLs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Topics:
    """Kafka topic names. A prefix keeps test runs (and tenants) apart."""

    prefix: str = ""

    @property
    def messages(self) -> str:
        return f"{self.prefix}chat.messages"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}chat.alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}chat.deadletter"

    @property
    def agent_activity(self) -> str:
        """Internal: per-agent activity keyed by agent_id (feeds the tally table)."""
        return f"{self.prefix}zhijian.agent-activity"

    @property
    def conversations(self) -> str:
        """Conversation snapshots keyed by conversation_id; the closing one is the summary."""
        return f"{self.prefix}chat.conversations"

    @property
    def transcript(self) -> str:
        """Internal: batches of transcript lines (texts and findings) per partition, stored in SQL."""
        return f"{self.prefix}zhijian.transcript"

    @property
    def alert_actions(self) -> str:
        """Claims, notes and resolutions of alerts, keyed by alert_id; every API process fans them out."""
        return f"{self.prefix}chat.alert-actions"

    @property
    def rules(self) -> str:
        """The rule set in force: one partition, compacted; the API publishes, workers follow."""
        return f"{self.prefix}chat.rules"

    def all(self) -> list[str]:
        """Topics with the configured partition count."""
        return [self.messages, self.alerts, self.deadletter, self.agent_activity, self.conversations, self.transcript,
                self.alert_actions]

    def compacted(self) -> list[str]:
        """Single-partition, compacted topics."""
        return [self.rules]


@dataclass(frozen=True)
class Settings:
    kafka_broker: str = "127.0.0.1:9092"
    partitions: int = 4
    replication_factor: int = 1
    topics: Topics = field(default_factory=Topics)
    app_id: str = "zhijian"
    database_url: str = "sqlite:///var/zhijian.db"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    worker_host: str = "127.0.0.1"
    worker_port: int = 6066
    worker_urls_raw: str = ""  # ZHIJIAN_WORKER_URLS: comma-separated worker web URLs (several workers)
    admin_token: str = ""
    data_dir: Path = Path("var")
    max_text_chars: int = 10_000
    max_future_skew_s: float = 24 * 3600.0
    producer_linger_ms: int = 5  # batch alerts/changelog writes: fewer requests per message
    fetch_max_wait_ms: int = 25  # how long a consumer's empty fetch may wait (Tansu holds it that long)
    end_offset_shim: str = "on"  # "on" | "off" (off only to demonstrate the Tansu gap)

    @property
    def bootstrap_servers(self) -> str:
        """Broker address without the ``kafka://`` scheme, for aiokafka."""
        servers = [part.split("://", 1)[-1] for part in self.kafka_broker.split(",")]
        return ",".join(servers)

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{s}" for s in self.bootstrap_servers.split(","))

    @property
    def worker_url(self) -> str:
        return f"http://{self.worker_host}:{self.worker_port}"

    @property
    def worker_urls(self) -> list[str]:
        """Every worker's web URL the API may ask (ZHIJIAN_WORKER_URLS, else the one worker_url)."""
        urls = [u.strip().rstrip("/") for u in self.worker_urls_raw.split(",") if u.strip()]
        return urls or [self.worker_url]

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("ZHIJIAN_DATA_DIR", "var"))
        return cls(
            kafka_broker=_env("KAFKA_BROKER", "127.0.0.1:9092"),
            partitions=_env_int("ZHIJIAN_PARTITIONS", 4),
            replication_factor=_env_int("ZHIJIAN_REPLICATION_FACTOR", 1),
            topics=Topics(prefix=_env("ZHIJIAN_TOPIC_PREFIX", "")),
            app_id=_env("ZHIJIAN_APP_ID", "zhijian"),
            database_url=_env("DATABASE_URL", f"sqlite:///{data_dir / 'zhijian.db'}"),
            api_host=_env("ZHIJIAN_API_HOST", "127.0.0.1"),
            api_port=_env_int("ZHIJIAN_API_PORT", 8000),
            worker_host=_env("ZHIJIAN_WORKER_HOST", "127.0.0.1"),
            worker_port=_env_int("ZHIJIAN_WORKER_PORT", 6066),
            worker_urls_raw=_env("ZHIJIAN_WORKER_URLS", ""),
            admin_token=_env("ZHIJIAN_ADMIN_TOKEN", ""),
            data_dir=data_dir,
            max_text_chars=_env_int("ZHIJIAN_MAX_TEXT_CHARS", 10_000),
            max_future_skew_s=_env_float("ZHIJIAN_MAX_FUTURE_SKEW_S", 24 * 3600.0),
            producer_linger_ms=_env_int("ZHIJIAN_PRODUCER_LINGER_MS", 5),
            fetch_max_wait_ms=_env_int("ZHIJIAN_FETCH_MAX_WAIT_MS", 25),
            end_offset_shim=_env("ZHIJIAN_END_OFFSET_SHIM", "on"),
        )
