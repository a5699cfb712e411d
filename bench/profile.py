"""Where the worker's time goes on the JDDC replay: py-spy samples of the worker process, grouped.

``python -m bench.profile`` (needs py-spy: ``pip install py-spy``, part of the dev extra). Each sample is
put in the first group whose marker appears in its stack, innermost frame first, so "zhijian code" is
time in our own functions and "Faust and asyncio" is the framework's per-event machinery around them.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import harness
from bench.__main__ import events, produce_all
from zhijian.kafka.broker import EmbeddedBroker, free_port

GROUPS = [  # (label, markers in a frame's file path), checked from the innermost frame outwards
    ("SQL persistence (worker's persist agents)", ("sqlalchemy", "sqlite", "zhijian/store/",
                                                   "persistence.py")),
    ("detectors", ("detectors/",)),
    ("conversation engine", ("stream/engine/",)),
    ("parsing and validation", ("zhijian/contract.py", "json/")),
    ("pipeline glue (outbox, tables, checkpoint)", ("stream/agents.py", "stream/writeback.py")),
    ("Kafka client (produce, fetch)", ("aiokafka/",)),
    ("Faust and asyncio (per-event framework work)", ("faust/", "mode/", "asyncio/", "venusian")),
]


def classify(stack: str) -> str:
    frames = stack.split(";")
    if "select (selectors.py" in frames[-1] or frames[-1].startswith("select ("):
        return "idle (waiting for the broker)"
    for frame in reversed(frames):
        for label, markers in GROUPS:
            if any(marker in frame for marker in markers):
                return label
    return "other"


def main(seconds: float = 8.0) -> int:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("bench.profile: py-spy is not installed (pip install py-spy)")
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="zhijian-profile-"))
    broker = EmbeddedBroker("127.0.0.1", free_port(), log_path=workdir / "tansu.log")
    broker.start()
    try:
        env = harness.environment(broker.bootstrap_servers, workdir, "prof")
        s = harness.create_topics(env)
        asyncio.run(produce_all(broker.bootstrap_servers, s.topics.messages, events(60_000)))
        worker = harness.worker(env, workdir, "profiled-worker")
        try:
            harness.poll(lambda: harness.health(env)["counters"]["processed"] > 3000, 120, "the worker running")
            raw = workdir / "samples.txt"
            subprocess.run([spy, "record", "-d", str(int(seconds)), "-r", "250", "-f", "raw", "-o", str(raw),
                            "--pid", str(worker.process.pid)], check=True, capture_output=True)
        finally:
            worker.stop()
    finally:
        broker.stop()
    main_thread: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        if "run_forever" in stack:
            main_thread[classify(stack)] += int(count)
        else:
            threads["consumer thread" if "aiokafka" in stack or "faust" in stack else "other threads"] += int(count)
    total = sum(main_thread.values())
    print(f"worker event loop, {total} samples over {seconds:g} s of the JDDC replay:")
    for label, count in main_thread.most_common():
        print(f"  {count / total * 100:5.1f} %  {label}")
    print("other threads (samples): " + ", ".join(f"{k} {v}" for k, v in threads.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
