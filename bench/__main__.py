"""``make bench``: every figure of the stream core in one run, on one embedded broker.

1. detector speed on the JDDC replay (and the sentiment comparison);
2. the conversation engine in process: µs/event for conversations of 10, 200 and 1,000 messages,
   state (changelog) bytes, memory per open conversation (bench.engine);
3. throughput over the same prefilled events: raw aiokafka consume, a Faust no-op agent, the zhijian
   worker — the ratio pipeline/no-op is the figure that counts on a shared machine — and the Kafka
   records the worker wrote per input event;
4. produce → WebSocket alert latency at 500 and 1,000 msg/s through worker and API, counting alerts
   received against alerts expected;
5. customer_waiting delay after its 30 s threshold while 1,000 msg/s of other traffic flows.
Events come from the JDDC sample (../shared/data/jddc_sample) when present (its timing is simulated:
the corpus has none), else from the simulator's phrase lists. Figures, not pass/fail: the targets
are printed beside them.
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

from bench import harness
from bench.workers import worker_scaling
from zhijian.core.corpus import jddc_path, read_jddc
from zhijian.kafka.broker import EmbeddedBroker, free_port
from zhijian.simulator import AGENT_REPLIES, AGENT_VIOLATIONS, CUSTOMER_OPENERS

N_EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
LOAD_SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))


def corpus() -> tuple[list[tuple[str, str, str]], str]:
    """(session, sender, text) triples."""
    if jddc_path().exists():
        rows = read_jddc()
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
    base = int(time.time() * 1000)
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


def worker_rate(env: dict[str, str], workdir: Path, n: int, label: str, module: str) -> tuple[float, dict[str, Any]]:
    child = harness.worker(env, workdir, label, module)
    try:
        def done() -> dict[str, Any] | None:
            body = harness.health(env)
            c = body["counters"]
            return body if c["processed"] + c.get("deadlettered", 0) + c.get("duplicates", 0) >= n else None

        body = harness.poll(done, 600, f"{label} to process {n} events", every_s=0.5)
        c = body["counters"]
        return float(c["processed"]) / max(c["last_at"] - c["first_at"], 1e-9), body
    finally:
        child.stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def background_load(bootstrap: str, topic: str, rate: float, seconds: float, tag: str) -> int:
    """Non-violating traffic at ``rate`` msg/s: polite agent replies and customer questions."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    rng = random.Random(11)
    sent = 0
    start = time.perf_counter()
    try:
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            conv = f"{tag}-bg-{i % 500}"
            agent = i % 2 == 1
            event = {"message_id": f"{tag}-bg-{i}", "conversation_id": conv, "shop_id": "s", "team_id": "t",
                     "agent_id": "bg", "customer_id": "c", "sender": "agent" if agent else "customer",
                     "type": "message", "text": rng.choice(AGENT_REPLIES if agent else CUSTOMER_OPENERS),
                     "ts": int(time.time() * 1000)}
            await producer.send(topic, json.dumps(event, ensure_ascii=False).encode(), key=conv.encode())
            sent += 1
    finally:
        await producer.stop()
    return sent


async def alert_latency(api_port: int, token: str, bootstrap: str, topic: str, rate: float,
                        seconds: float) -> tuple[list[float], list[float], int]:
    """Every tenth message is a violation in a conversation of its own (so no throttle hides it)."""
    url = await asyncio.to_thread(harness.socket_url, api_port, "/ws/alerts", token)
    run = uuid.uuid4().hex[:8]  # conversation ids never repeat across runs on one stack (the throttle)
    latencies: list[float] = []
    worker_part: list[float] = []
    sent_at: dict[str, float] = {}
    expected = 0
    produced = asyncio.Event()
    all_in = asyncio.Event()
    async with websockets.connect(url, max_size=None) as socket:
        async def receive() -> None:
            async for raw in socket:
                alert = json.loads(raw)
                sent = sent_at.pop(alert.get("message_id", ""), None)
                if sent is not None:  # the first alert of each violating message
                    latencies.append(time.time() - sent)
                    worker_part.append(datetime.fromisoformat(alert["detected_at"]).timestamp() - sent)
                    if produced.is_set() and not sent_at:
                        all_in.set()

        receiver = asyncio.create_task(receive())
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
        await producer.start()
        rng = random.Random(3)
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            violating = i % 10 == 0
            conv = f"lat-{run}-{i}" if violating else f"lat-{run}-bg{i % 400}"
            text = rng.choice(AGENT_VIOLATIONS) if violating else rng.choice(AGENT_REPLIES)
            mid = f"lat-{uuid.uuid4().hex}"
            event = {"message_id": mid, "conversation_id": conv, "shop_id": "s", "team_id": "t", "agent_id": "a",
                     "customer_id": "c", "sender": "agent", "type": "message", "text": text,
                     "ts": int(time.time() * 1000)}
            if violating:
                sent_at[mid] = time.time()
                expected += 1
            await producer.send(topic, json.dumps(event, ensure_ascii=False).encode(), key=conv.encode())
        await producer.stop()
        produced.set()
        if sent_at:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), 15)
        receiver.cancel()
    return latencies, worker_part, expected


async def waiting_delay(api_port: int, token: str, bootstrap: str, topic: str, conversations: int = 200,
                        spread_s: float = 5.0, load: float = 1000.0) -> tuple[list[float], int]:
    """Customers whose 30 s threshold falls over the next few seconds, while ``load`` msg/s flow."""
    url = await asyncio.to_thread(harness.socket_url, api_port, "/ws/alerts", token)
    crossing: dict[str, float] = {}
    delays: list[float] = []
    all_in = asyncio.Event()
    async with websockets.connect(url, max_size=None) as socket:
        async def receive() -> None:
            async for raw in socket:
                alert = json.loads(raw)
                conv = alert.get("conversation_id")
                if alert.get("rule") == "customer_waiting" and alert["detail"].get("level") == "warning" \
                        and conv in crossing:
                    delays.append(time.time() - crossing.pop(conv))
                    if not crossing:
                        all_in.set()

        receiver = asyncio.create_task(receive())
        tag = uuid.uuid4().hex[:6]
        load_task = asyncio.create_task(background_load(bootstrap, topic, load, spread_s + 12, tag))
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
        await producer.start()
        now = time.time()
        for i in range(conversations):
            since = now - 30 + 4 + i * spread_s / conversations
            conv = f"wait-{tag}-{i}"
            crossing[conv] = since + 30
            event = {"message_id": f"{conv}-c", "conversation_id": conv, "shop_id": "s", "team_id": "t",
                     "agent_id": None, "customer_id": "c", "sender": "customer", "type": "message",
                     "text": "在吗？", "ts": int(since * 1000)}
            await producer.send(topic, json.dumps(event, ensure_ascii=False).encode(), key=conv.encode())
        await producer.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), spread_s + 30)
        receiver.cancel()
        await load_task
    return delays, conversations


def main() -> int:
    from bench import engine
    from bench.detectors import detector_timing, sentiment_comparison

    detector_timing()
    sentiment_comparison()
    engine.main()
    workdir = Path(tempfile.mkdtemp(prefix="zhijian-bench-"))
    broker = EmbeddedBroker("127.0.0.1", free_port(), log_path=workdir / "tansu.log")
    broker.start()
    try:
        batch = events(N_EVENTS)
        print(f"bench: {N_EVENTS} events from {corpus()[1]}; broker Tansu at {broker.bootstrap_servers}", flush=True)
        __import__("bench.ingest").ingest.ingest_bench(broker, workdir)  # HTTP ingest and /api/check (issue 16)

        def prefilled(name: str) -> dict[str, str]:
            env = harness.environment(broker.bootstrap_servers, workdir, name)
            s = harness.create_topics(env)
            asyncio.run(produce_all(broker.bootstrap_servers, s.topics.messages, batch))
            return env

        env = prefilled("raw")
        s = harness.settings(env)
        raw = asyncio.run(raw_consume_rate(broker.bootstrap_servers, s.topics.messages, s.partitions, N_EVENTS))
        print(f"raw aiokafka consume:   {raw:10.0f} events/s", flush=True)
        noop, _ = worker_rate(prefilled("noop"), workdir, N_EVENTS, "noop", "bench.noop")
        print(f"faust no-op agent:      {noop:10.0f} events/s", flush=True)
        broker_before = harness_rss(broker)
        pipeline, body = worker_rate(prefilled("pipe"), workdir, N_EVENTS, "pipeline", "zhijian")
        broker_growth = (harness_rss(broker) - broker_before) * 1024 / N_EVENTS
        print(f"zhijian pipeline:       {pipeline:10.0f} events/s", flush=True)
        print(f"ratio pipeline/no-op:   {pipeline / noop:10.2f}   (target ≥ 0.7)\n"
              f"ratio pipeline/raw:     {pipeline / raw:10.3f}")
        c, out = body["counters"], body["outputs"]
        inputs = c["processed"] + c["duplicates"] + c["deadlettered"]
        print(f"Kafka records written per input event: {(out['sent'] + out['changelog_records']) / inputs:.3f} "
              f"({out['sent']} outputs: {c['alerts']} alerts, {c['snapshots']} snapshots, transcript batches, "
              f"tally partials; {out['changelog_records']} changelog records, "
              f"{out['changelog_bytes'] / inputs:.0f} changelog bytes per input event; "
              f"{out['checkpoints']} checkpoints)", flush=True)
        hours = 8 * 1024 ** 3 / max(broker_growth, 1) / 300 / 3600
        print(f"embedded broker memory per input event (input, outputs, changelogs, offsets): {broker_growth:.0f} "
              f"bytes; at 300 msg/s it holds about {hours:.0f} hours in 8 GiB (it frees nothing: use Apache Kafka "
              f"for a real floor)", flush=True)
        worker_scaling(broker.bootstrap_servers, workdir, batch)  # 1, 2 and 3 workers (bench.workers)

        env = harness.environment(broker.bootstrap_servers, workdir, "lat")
        s = harness.create_topics(env)
        worker = harness.worker(env, workdir, "latency-worker")
        api = harness.api(env, workdir)
        try:
            for rate in (500.0, 1000.0):
                latencies, worker_part, expected = asyncio.run(alert_latency(
                    s.api_port, s.admin_token, s.bootstrap_servers, s.topics.messages, rate, LOAD_SECONDS))
                target = "p50 ≤ 30 ms, p99 ≤ 150 ms" if rate == 500 else "p99 ≤ 300 ms"
                if latencies:
                    print(f"alert latency at {rate:g} msg/s for {LOAD_SECONDS:g} s: "
                          f"p50 {pct(latencies, 0.5) * 1000:.0f} ms, "
                          f"p99 {pct(latencies, 0.99) * 1000:.0f} ms ({len(latencies)}/{expected} alerts received; "
                          f"target {target}; produce → worker processed p50 {pct(worker_part, 0.5) * 1000:.0f} ms)",
                          flush=True)
                else:
                    print(f"alert latency at {rate:g} msg/s: no alerts received of {expected} expected")
            delays, expected = asyncio.run(waiting_delay(s.api_port, s.admin_token, s.bootstrap_servers,
                                                         s.topics.messages))
            if delays:
                print(f"customer_waiting delay after the 30 s threshold with 1,000 msg/s of other traffic: "
                      f"p50 {pct(delays, 0.5) * 1000:.0f} ms, p99 {pct(delays, 0.99) * 1000:.0f} ms, "
                      f"max {max(delays) * 1000:.0f} ms ({len(delays)}/{expected} alerts; target p99 ≤ 1 s)")
            else:
                print("customer_waiting delay: no alerts received")
            print(f"worker RSS after the latency runs: {worker.rss_kb() / 1024:.0f} MiB; broker RSS: "
                  f"{harness_rss(broker) / 1024:.0f} MiB")
        finally:
            api.stop()
            worker.stop()
        print(f"(logs in {workdir})")
    finally:
        broker.stop()
    from bench import profile

    return profile.main()


def harness_rss(broker: EmbeddedBroker) -> int:
    if broker.process is None:
        return 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{broker.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
