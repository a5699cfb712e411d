"""The supervisor's memory watch on the embedded broker: a warning at half the machine's memory and another
when little is left, each once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zhijian import stack as stack_module
from zhijian.core.settings import Settings


def test_the_broker_memory_warning_comes_once_per_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    supervisor = stack_module.Stack(Settings(data_dir=tmp_path), "token")
    broker = stack_module.Child("broker", ["broker"], tmp_path / "broker.log")
    broker.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    supervisor.children.append(broker)
    readings = {"VmRSS:": 1_000_000, "MemTotal:": 8_000_000, "MemAvailable:": 6_000_000}
    monkeypatch.setattr(stack_module, "_proc_kb", lambda _path, name: readings[name])
    try:
        supervisor.watch_broker_memory()
        assert capsys.readouterr().err == ""  # 1 GB of 8: quiet
        readings["VmRSS:"] = 5_000_000
        supervisor.watch_broker_memory()
        supervisor.watch_broker_memory()
        first = capsys.readouterr().err
        assert first.count("WARNING") == 1 and "Apache Kafka" in first
        readings["MemAvailable:"] = 500_000
        supervisor.watch_broker_memory()
        assert capsys.readouterr().err.count("WARNING") == 1
    finally:
        broker.process.kill()
        broker.process.wait()
