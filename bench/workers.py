"""Pipeline rate with 1, 2 and 3 worker processes in one consumer group, on this machine.

For each worker count: fresh topics with ``PARTITIONS`` partitions, prefilled with the same chat events;
the workers start together (one group join, one assignment), each on its own web port; the rate is the
events all of them processed, divided by the time from the first event any of them processed to the last.
On a machine with fewer cores than workers the processes share the CPU: the figure shows what a second
or third process buys *here*, not on a machine with a core per worker.

    python -m bench.workers            (its own embedded broker; BENCH_EVENTS events, default 20000)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench import harness
from zhijian.kafka.broker import EmbeddedBroker, free_port

PARTITIONS = 6
COUNTS = (1, 2, 3)


def run(bootstrap: str, workdir: Path, batch: list[tuple[bytes, bytes]], workers: int) -> dict[str, float]:
    """Prefill fresh topics with ``batch``, let ``workers`` processes work it off; their combined rate."""
    from bench.__main__ import produce_all

    env = harness.environment(bootstrap, workdir, f"scale{workers}")
    env["ZHIJIAN_PARTITIONS"] = str(PARTITIONS)
    settings = harness.create_topics(env)
    asyncio.run(produce_all(bootstrap, settings.topics.messages, batch))
    ports = [free_port() for _ in range(workers)]
    children = []
    for n, port in enumerate(ports):
        data_dir = workdir / f"scale{workers}-{n}"
        data_dir.mkdir(parents=True, exist_ok=True)
        child_env = {**env, "ZHIJIAN_WORKER_PORT": str(port), "ZHIJIAN_DATA_DIR": str(data_dir)}
        children.append(harness.Child(["zhijian", "worker"], child_env, workdir / f"scale{workers}-worker{n}.log"))
    try:
        def done() -> list[dict[str, Any]] | None:
            bodies = []
            for child, port in zip(children, ports, strict=True):
                if child.process.poll() is not None:
                    raise RuntimeError(f"a worker exited with {child.process.returncode}")
                body = httpx.get(f"http://127.0.0.1:{port}/zhijian/health/", timeout=3).json()
                bodies.append(body["counters"])
            total = sum(c["processed"] + c["deadlettered"] + c["duplicates"] for c in bodies)
            return bodies if total >= len(batch) else None

        counters = harness.poll(done, 600, f"{workers} workers to process {len(batch)} events", every_s=0.5)
    finally:
        for child in children:
            child.stop()
    active = [c for c in counters if c["processed"]]
    span = max(c["last_at"] for c in active) - min(c["first_at"] for c in active)
    processed = sum(c["processed"] for c in counters)
    return {"workers": workers, "processed": processed, "seconds": span, "rate": processed / max(span, 1e-9),
            "busy": len(active)}


def worker_scaling(bootstrap: str, workdir: Path, batch: list[tuple[bytes, bytes]]) -> list[dict[str, float]]:
    """One row per worker count, printed as it comes."""
    rows: list[dict[str, float]] = []
    for workers in COUNTS:
        row = run(bootstrap, workdir, batch, workers)
        base = rows[0]["rate"] if rows else row["rate"]
        print(f"zhijian pipeline, {workers} worker{'s' if workers > 1 else ' '} ({PARTITIONS} partitions): "
              f"{row['rate']:8.0f} events/s  (×{row['rate'] / base:.2f}; {os.cpu_count()} cores)", flush=True)
        rows.append(row)
    return rows


def main() -> int:
    from bench.__main__ import N_EVENTS, events

    workdir = Path(tempfile.mkdtemp(prefix="zhijian-bench-workers-"))
    broker = EmbeddedBroker("127.0.0.1", free_port(), log_path=workdir / "tansu.log")
    broker.start()
    try:
        worker_scaling(broker.bootstrap_servers, workdir, events(N_EVENTS))
        print(f"(logs in {workdir})")
        return 0
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
