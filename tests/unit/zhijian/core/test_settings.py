"""zhijian/core/settings.py: every variable with its default, empty means default, a bad value names its
variable, keyword arguments win over the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from zhijian.core.settings import Settings

DEFAULTS = {
    "KAFKA_BROKER": ("kafka_broker", "127.0.0.1:9092"),
    "ZHIJIAN_PARTITIONS": ("partitions", 4),
    "ZHIJIAN_REPLICATION_FACTOR": ("replication_factor", 1),
    "ZHIJIAN_TOPIC_PREFIX": ("topic_prefix", ""),
    "ZHIJIAN_APP_ID": ("app_id", "zhijian"),
    "ZHIJIAN_DATA_DIR": ("data_dir", Path("var")),
    "DATABASE_URL": ("database_url", "sqlite:///var/zhijian.db"),
    "ZHIJIAN_API_HOST": ("api_host", "127.0.0.1"),
    "ZHIJIAN_API_PORT": ("api_port", 8000),
    "ZHIJIAN_WORKER_HOST": ("worker_host", "127.0.0.1"),
    "ZHIJIAN_WORKER_PORT": ("worker_port", 6066),
    "ZHIJIAN_WORKER_URLS": ("worker_urls_raw", ""),
    "ZHIJIAN_ADMIN_TOKEN": ("admin_token", ""),
    "ZHIJIAN_MAX_TEXT_CHARS": ("max_text_chars", 10_000),
    "ZHIJIAN_MAX_FUTURE_SKEW_S": ("max_future_skew_s", 86_400.0),
    "ZHIJIAN_PRODUCER_LINGER_MS": ("producer_linger_ms", 5),
    "ZHIJIAN_FETCH_MAX_WAIT_MS": ("fetch_max_wait_ms", 25),
    "ZHIJIAN_END_OFFSET_SHIM": ("end_offset_shim", "on"),
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_variable_has_its_default(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env()
    assert {name: getattr(settings, field) for name, (field, _) in DEFAULTS.items()} == \
        {name: default for name, (_, default) in DEFAULTS.items()}
    assert {str(f.validation_alias) for f in Settings.model_fields.values()} == set(DEFAULTS)
    assert settings.topics.alerts == "chat.alerts" and settings.worker_urls == ["http://127.0.0.1:6066"]


def test_each_variable_is_read_and_an_empty_one_means_the_default(clean_env: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    clean_env.setenv("KAFKA_BROKER", "kafka://k1:9092,kafka://k2:9092")
    clean_env.setenv("ZHIJIAN_PARTITIONS", "12")
    clean_env.setenv("ZHIJIAN_TOPIC_PREFIX", "t7.")
    clean_env.setenv("ZHIJIAN_DATA_DIR", str(tmp_path))
    clean_env.setenv("ZHIJIAN_WORKER_URLS", " http://w1:6066/ , http://w2:6066")
    clean_env.setenv("ZHIJIAN_MAX_FUTURE_SKEW_S", "2.5")
    clean_env.setenv("ZHIJIAN_API_PORT", "")
    settings = Settings.from_env()
    assert (settings.partitions, settings.api_port, settings.max_future_skew_s) == (12, 8000, 2.5)
    assert settings.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.faust_broker == "kafka://k1:9092;kafka://k2:9092"
    assert settings.topics.alerts == "t7.chat.alerts" and settings.topics.rules == "t7.chat.rules"
    assert settings.database_url == f"sqlite:///{tmp_path / 'zhijian.db'}"  # in the data directory
    assert settings.worker_urls == ["http://w1:6066", "http://w2:6066"]
    clean_env.setenv("DATABASE_URL", "postgresql://db/zhijian")
    assert Settings.from_env().database_url == "postgresql://db/zhijian"


@pytest.mark.parametrize(("name", "value"), [("ZHIJIAN_PARTITIONS", "four"), ("ZHIJIAN_API_PORT", "80.5"),
                                             ("ZHIJIAN_MAX_FUTURE_SKEW_S", "a day")])
def test_a_bad_value_fails_naming_its_variable(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        Settings.from_env()
    assert [error["loc"] for error in raised.value.errors()] == [(name,)]
    assert name in str(raised.value) and isinstance(raised.value, ValueError)


def test_keywords_win_over_the_environment_and_settings_are_frozen(clean_env: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    clean_env.setenv("ZHIJIAN_PARTITIONS", "8")
    settings = Settings(partitions=2, data_dir=tmp_path)
    assert settings.partitions == 2 and settings.database_url == f"sqlite:///{tmp_path / 'zhijian.db'}"
    with pytest.raises(ValidationError):
        settings.partitions = 3  # type: ignore[misc]
