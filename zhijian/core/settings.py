"""Runtime settings, read once from the environment.

Every process (broker launcher, worker, API, simulator) reads the same variables,
so the same code runs against the embedded broker and against Apache Kafka +
PostgreSQL just by changing URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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


class Settings(BaseSettings):
    """Every setting with its environment variable (the alias) and default.

    ``Settings.from_env()`` (or ``Settings()``) reads the environment; an empty variable means the default;
    keyword arguments win over the environment. A bad value fails with a ``ValidationError`` naming the
    variable, e.g. ``ZHIJIAN_PARTITIONS  Input should be a valid integer``.
    """

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, env_ignore_empty=True,
                                      validate_by_name=True, validate_by_alias=True, extra="ignore")

    kafka_broker: str = Field(default="127.0.0.1:9092", validation_alias="KAFKA_BROKER")
    partitions: int = Field(default=4, validation_alias="ZHIJIAN_PARTITIONS")
    replication_factor: int = Field(default=1, validation_alias="ZHIJIAN_REPLICATION_FACTOR")
    # keeps test runs (and tenants) apart
    topic_prefix: str = Field(default="", validation_alias="ZHIJIAN_TOPIC_PREFIX")
    app_id: str = Field(default="zhijian", validation_alias="ZHIJIAN_APP_ID")
    data_dir: Path = Field(default=Path("var"), validation_alias="ZHIJIAN_DATA_DIR")
    # default: zhijian.db in data_dir (filled in below)
    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    api_host: str = Field(default="127.0.0.1", validation_alias="ZHIJIAN_API_HOST")
    api_port: int = Field(default=8000, validation_alias="ZHIJIAN_API_PORT")
    worker_host: str = Field(default="127.0.0.1", validation_alias="ZHIJIAN_WORKER_HOST")
    worker_port: int = Field(default=6066, validation_alias="ZHIJIAN_WORKER_PORT")
    # comma-separated worker web URLs (several workers)
    worker_urls_raw: str = Field(default="", validation_alias="ZHIJIAN_WORKER_URLS")
    admin_token: str = Field(default="", validation_alias="ZHIJIAN_ADMIN_TOKEN")
    max_text_chars: int = Field(default=10_000, validation_alias="ZHIJIAN_MAX_TEXT_CHARS")
    max_future_skew_s: float = Field(default=24 * 3600.0, validation_alias="ZHIJIAN_MAX_FUTURE_SKEW_S")
    # batch alerts/changelog writes: fewer requests per message
    producer_linger_ms: int = Field(default=5, validation_alias="ZHIJIAN_PRODUCER_LINGER_MS")
    # how long a consumer's empty fetch may wait (Tansu holds it that long)
    fetch_max_wait_ms: int = Field(default=25, validation_alias="ZHIJIAN_FETCH_MAX_WAIT_MS")
    # "on" | "off" (off only to demonstrate the Tansu gap)
    end_offset_shim: str = Field(default="on", validation_alias="ZHIJIAN_END_OFFSET_SHIM")

    @model_validator(mode="before")
    @classmethod
    def _database_in_data_dir(cls, data: Any) -> Any:
        if isinstance(data, dict) and not (data.get("database_url") or data.get("DATABASE_URL")):
            data_dir = Path(data.get("data_dir") or data.get("ZHIJIAN_DATA_DIR") or "var")
            data = {**data, "database_url": f"sqlite:///{data_dir / 'zhijian.db'}"}
        return data

    @property
    def topics(self) -> Topics:
        """Kafka topic names under this run's prefix."""
        return Topics(prefix=self.topic_prefix)

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
        """The settings of this process's environment."""
        return cls()
