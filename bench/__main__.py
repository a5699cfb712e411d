"""Run every benchmark once on one embedded broker and print the figures.

1. raw aiokafka consume rate over N prefilled chat events;
2. a Faust no-op agent over the same events (bench.noop);
3. the zhijian pipeline worker over the same events;
4. produce → WebSocket alert latency at a fixed load through worker and API;
5. customer_waiting delay: WebSocket arrival minus the moment the 30 s threshold was crossed.
Events come from the JDDC sample (../shared/data/jddc_sample) when present (timings are
simulated: the corpus has none), else from the simulator's phrase lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import websockets
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.workers import worker_scaling
from tests.integration.harness import Proc, http_json, settings_for, stack_env, start_api, wait_for
from zhijian.broker import EmbeddedBroker, ensure_topics, free_port
from zhijian.simulator import AGENT_REPLIES, AGENT_VIOLATIONS, CUSTOMER_OPENERS

N_EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
LOAD_RATE = float(os.environ.get("BENCH_RATE", "500"))
LOAD_SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
JDDC = Path(__file__).resolve().parents[2] / "shared" / "data" / "jddc_sample" / "chat_0.1per.txt"


def corpus() -> tuple[list[tuple[str, str, str]], str]:
    """(session, sender, text) triples."""
    if JDDC.exists():
        rows = []
        for line in JDDC.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) >= 7:
                rows.append((parts[0], "agent" if parts[2] == "1" else "customer", parts[6][:2000]))
        return rows, f"JDDC sample ({len(rows)} utterances, replayed with simulated timing)"
    rng = random.Random(7)
    rows = []
    for s in range(2000):
        for turn in range(6):
            pool = CUSTOMER_OPENERS if turn % 2 == 0 else (AGENT_VIOLATIONS if rng.random() < 0.08 else AGENT_REPLIES)
            rows.append((f"s{s}", "customer" if turn % 2 == 0 else "agent", rng.choice(pool)))
    return rows, "simulator phrases (JDDC sample not found)"


def events(n: int) -> list[tuple[bytes, bytes]]:
    rows, _ = corpus()
    base = int(time.time() * 1000)  # live timestamps: waiting timers behave as on a real floor
    out = []
    for i in range(n):
        session, sender, text = rows[i % len(rows)]
        conv = f"{session}-{i // len(rows)}"
        event = {"message_id": f"m{i}", "conversation_id": conv, "shop_id": "shop-1", "team_id": "t1",
                 "agent_id": f"agent-{hash(session) % 20}", "customer_id": "c1", "sender": sender,
                 "type": "message", "text": text, "ts": base + i * 100}
        out.append((conv.encode(), json.dumps(event, ensure_ascii=False).encode()))
    return out


async def produce_all(bootstrap: str, topic: str, batch: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in batch]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_consume_rate(bootstrap: str, topic: str, partitions: int, n: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        seen = 0
        start = time.perf_counter()
        while seen < n:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    json.loads(record.value)  # a consumer that does nothing useful still decodes
                    seen += 1
        return n / (time.perf_counter() - start)
    finally:
        await consumer.stop()


def worker_rate(module: list[str], env: dict[str, str], workdir: Path, n: int, label: str) -> float:
    proc = Proc(module[0], env, workdir, label) if module[0] == "worker" else None
    if proc is None:
        import subprocess

        log = open(workdir / f"{label}.log", "ab")  # noqa: SIM115
        popen = subprocess.Popen([sys.executable, "-m", *module], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['ZHIJIAN_WORKER_PORT']}/zhijian/health/"
    try:
        def done() -> dict[str, float] | None:
            status, body = http_json(url)
            counters = body["counters"]
            total = counters["processed"] + counters.get("deadlettered", 0) + counters.get("duplicates", 0)
            return counters if status == 200 and total >= n else None

        counters = wait_for(done, 300, f"{label} to process {n} events", interval=0.5)
        return float(counters["processed"]) / max(counters["last_at"] - counters["first_at"], 1e-9)
    finally:
        if proc is not None:
            proc.stop()
        else:
            popen.terminate()
            popen.wait(20)


async def alert_latency(env: dict[str, str], settings: Any, rate: float, seconds: float) -> list[float]:
    url = f"ws://127.0.0.1:{settings.api_port}/ws/alerts?token={settings.admin_token}"
    latencies: list[float] = []
    worker_part: list[float] = []  # produce → the worker processed it (detected_at)
    sent_at: dict[str, float] = {}
    async with websockets.connect(url) as socket:
        async def receive() -> None:
            async for raw in socket:
                alert = json.loads(raw)
                if alert["message_id"] in sent_at:  # the first alert of each violating message
                    sent = sent_at.pop(alert["message_id"])
                    latencies.append(time.time() - sent)
                    detected = datetime.fromisoformat(alert["detected_at"]).timestamp()
                    worker_part.append(detected - sent)

        receiver = asyncio.create_task(receive())
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=1)
        await producer.start()
        rng = random.Random(3)
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            violating = i % 10 == 0
            # a violation opens its own conversation: repeats in one conversation are throttled
            conv = f"lat-{i}" if violating else f"lat-{i % 400}"
            text = rng.choice(AGENT_VIOLATIONS) if violating else rng.choice(AGENT_REPLIES)
            mid = f"lat-{uuid.uuid4().hex}"
            event = {"message_id": mid, "conversation_id": conv, "shop_id": "s", "team_id": "t", "agent_id": "a",
                     "customer_id": "c", "sender": "agent", "type": "message", "text": text,
                     "ts": int(time.time() * 1000)}
            if violating:
                sent_at[mid] = time.time()
            await producer.send(settings.topics.messages, json.dumps(event, ensure_ascii=False).encode(),
                                key=conv.encode())
        await producer.stop()
        await asyncio.sleep(5)
        receiver.cancel()
    if worker_part:
        print(f"  ({rate:g} msg/s: produce → worker processed p50 {pct(worker_part, 0.5) * 1000:.0f} ms; "
              f"the rest is alerts topic → API → WebSocket)", flush=True)
    return latencies


async def waiting_delay(settings: Any, conversations: int = 200, spread_s: float = 5.0) -> list[float]:
    """Customers whose 30 s threshold falls over the next few seconds; delay of each warning."""
    url = f"ws://127.0.0.1:{settings.api_port}/ws/alerts?token={settings.admin_token}"
    crossing: dict[str, float] = {}
    delays: list[float] = []
    all_in = asyncio.Event()
    async with websockets.connect(url) as socket:
        async def receive() -> None:
            async for raw in socket:
                alert = json.loads(raw)
                conv = alert["conversation_id"]
                if alert["rule"] == "customer_waiting" and alert["detail"].get("level") == "warning" \
                        and conv in crossing:
                    delays.append(time.time() - crossing.pop(conv))
                    if not crossing:
                        all_in.set()

        receiver = asyncio.create_task(receive())
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=1)
        await producer.start()
        now = time.time()
        for i in range(conversations):
            since = now - 30 + 2 + i * spread_s / conversations
            conv = f"wait-{uuid.uuid4().hex[:10]}"
            crossing[conv] = since + 30
            event = {"message_id": f"{conv}-c", "conversation_id": conv, "shop_id": "s", "team_id": "t",
                     "agent_id": None, "customer_id": "c", "sender": "customer", "type": "message",
                     "text": "在吗？", "ts": int(since * 1000)}
            await producer.send(settings.topics.messages, json.dumps(event, ensure_ascii=False).encode(),
                                key=conv.encode())
        await producer.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), spread_s + 20)
        receiver.cancel()
    return delays


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    from bench.detectors import detector_timing, sentiment_comparison

    detector_timing()
    sentiment_comparison()
    workdir = Path(tempfile.mkdtemp(prefix="zhijian-bench-"))
    broker = EmbeddedBroker("127.0.0.1", free_port(), log_path=workdir / "tansu.log")
    broker.start()
    try:
        batch = events(N_EVENTS)
        print(f"bench: {N_EVENTS} events from {corpus()[1]}; broker Tansu at {broker.bootstrap_servers}", flush=True)

        def fresh(name: str, prefill: bool = True) -> tuple[dict[str, str], Any]:
            env = stack_env(broker.bootstrap_servers, workdir, name=name)
            settings = settings_for(env)
            asyncio.run(ensure_topics(broker.bootstrap_servers, settings.topics.all(), partitions=settings.partitions,
                                      compacted=settings.topics.compacted()))
            if prefill:
                asyncio.run(produce_all(broker.bootstrap_servers, settings.topics.messages, batch))
            return env, settings

        env, settings = fresh("raw")
        raw = asyncio.run(raw_consume_rate(broker.bootstrap_servers, settings.topics.messages,
                                           settings.partitions, N_EVENTS))
        print(f"raw aiokafka consume:   {raw:10.0f} events/s", flush=True)
        env, settings = fresh("noop")
        noop = worker_rate(["bench.noop"], env, workdir, N_EVENTS, "noop")
        print(f"faust no-op agent:      {noop:10.0f} events/s", flush=True)
        env, settings = fresh("pipe")
        pipeline = worker_rate(["worker"], env, workdir, N_EVENTS, "pipeline")
        print(f"zhijian pipeline:       {pipeline:10.0f} events/s", flush=True)
        print(f"ratio pipeline/no-op:   {pipeline / noop:10.2f}\nratio pipeline/raw:     {pipeline / raw:10.3f}")
        worker_scaling(broker.bootstrap_servers, workdir, batch)  # 1, 2 and 3 workers (bench.workers)

        # Latency in steady state: a fresh stack without a backlog to work off first.
        env, settings = fresh("lat", prefill=False)
        from tests.integration.harness import start_worker

        worker = start_worker(env, workdir, "latency-worker")
        api = start_api(env, workdir)
        try:
            light = asyncio.run(alert_latency(env, settings, LOAD_RATE / 5, LOAD_SECONDS))
            latencies = asyncio.run(alert_latency(env, settings, LOAD_RATE, LOAD_SECONDS))
            waits = asyncio.run(waiting_delay(settings))
        finally:
            api.stop()
            worker.stop()
        expected = int(LOAD_RATE * LOAD_SECONDS) // 10
        if light:
            print(f"alert latency at {LOAD_RATE / 5:g} msg/s for {LOAD_SECONDS:g} s: "
                  f"p50 {pct(light, 0.5) * 1000:.0f} ms, p99 {pct(light, 0.99) * 1000:.0f} ms "
                  f"({len(light)}/{expected // 5} alerts received)")
        if latencies:
            print(f"alert latency at {LOAD_RATE:g} msg/s for {LOAD_SECONDS:g} s: "
                  f"p50 {pct(latencies, 0.5) * 1000:.0f} ms, "
                  f"p99 {pct(latencies, 0.99) * 1000:.0f} ms ({len(latencies)}/{expected} alerts received)")
        else:
            print(f"alert latency: no alerts received of {expected} expected")
            return 1
        if waits:
            print(f"customer_waiting delay after the 30 s threshold: p50 {pct(waits, 0.5) * 1000:.0f} ms, "
                  f"p99 {pct(waits, 0.99) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms ({len(waits)}/200 alerts)")
        else:
            print("customer_waiting delay: no alerts received")
            return 1
        print(f"(logs in {workdir})")
        return 0
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
