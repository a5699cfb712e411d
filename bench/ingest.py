"""HTTP ingest throughput and the pre-send check's latency.

1. ``POST /api/events`` on a real API process against the embedded broker: events per second
   accepted (acknowledged by the broker, acks=all) in batches (JSON arrays of ``BENCH_INGEST_BATCH``)
   from ``BENCH_INGEST_CLIENTS`` concurrent clients, and one event per request;
2. ``POST /api/check``'s work in-process (``api.check.check_draft``: the pipeline's engine on one
   draft): p50/p99 per draft over the corpus' agent messages.

Run with ``make bench`` or alone: ``python -m bench.ingest``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from api.check import CheckIn, check_draft
from bench import harness
from bench.detectors import corpus_rows, percentile
from detectors import RuleBook, load_ruleset
from zhijian.kafka.broker import EmbeddedBroker, free_port

EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "20000"))
BATCH = int(os.environ.get("BENCH_INGEST_BATCH", "500"))
CLIENTS = int(os.environ.get("BENCH_INGEST_CLIENTS", "4"))
SINGLES = int(os.environ.get("BENCH_INGEST_SINGLES", "2000"))


def check_latency() -> dict[str, float]:
    rows, source = corpus_rows()
    drafts = [text for sender, text in rows if sender == "agent" and text.strip()][:20000]
    book = RuleBook(load_ruleset())
    bodies = [CheckIn(sender="agent", shop_id="shop-1", text=text[:10_000]) for text in drafts]
    now = int(time.time() * 1000)
    for body in bodies[:500]:  # warm-up
        check_draft(book, body, now_ms=now)
    times, cpu = [], []
    for body in bodies:
        start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
        check_draft(book, body, now_ms=now)
        cpu.append((time.thread_time_ns() - start_cpu) / 1e6)
        times.append((time.perf_counter_ns() - start) / 1e6)
    times.sort()
    cpu.sort()
    result = {"p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99), "max_ms": times[-1],
              "cpu_p99_ms": percentile(cpu, 0.99), "drafts": len(times)}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"pre-send check (POST /api/check's work, in-process) on {len(times)} agent messages of {source}: "
          f"wall p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms, max {result['max_ms']:.1f} ms; "
          f"CPU p99 {result['cpu_p99_ms']:.3f} ms (load average {load:.1f} on {os.cpu_count()} cores)", flush=True)
    return result


def _events(n: int, run: str) -> list[bytes]:
    rows, _ = corpus_rows()
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        sender, text = rows[i % len(rows)]
        event = {"message_id": f"{run}-{i}", "conversation_id": f"{run}-c{i // 8}", "shop_id": "shop-1",
                 "team_id": "team-a", "agent_id": "a01", "customer_id": "cust-1", "sender": sender,
                 "type": "message", "text": text[:2000] or "在吗", "ts": now + i}
        out.append(json.dumps(event, ensure_ascii=False).encode())
    return out


async def _post_all(url: str, token: str, bodies: list[bytes], clients: int) -> tuple[float, int]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    accepted = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def client() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(timeout=60) as http:
            while not queue.empty():
                body = queue.get_nowait()
                while True:
                    response = await http.post(url, content=body, headers=headers)
                    if response.status_code in (429, 503):
                        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                        continue
                    accepted += int(response.json()["accepted"])
                    break

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, accepted


def ingest_rate(broker: EmbeddedBroker, workdir: Path) -> dict[str, float]:
    env = harness.environment(broker.bootstrap_servers, workdir, "ingest")
    settings = harness.create_topics(env)
    api = harness.api(env, workdir, healthy=False)  # the ingest needs the broker, not a worker
    try:
        stats = f"http://127.0.0.1:{settings.api_port}/api/events/stats"
        harness.poll(lambda: httpx.get(stats, headers={"Authorization": f"Bearer {settings.admin_token}"},
                                       timeout=3).json()["connected"], 60, "the ingest producer")
        url = f"http://127.0.0.1:{settings.api_port}/api/events"
        run = uuid.uuid4().hex[:6]
        events = _events(EVENTS + SINGLES, run)
        batches = [b"[" + b",".join(events[i:i + BATCH]) + b"]" for i in range(0, EVENTS, BATCH)]
        elapsed, accepted = asyncio.run(_post_all(url, settings.admin_token, batches, CLIENTS))
        batched = accepted / elapsed
        print(f"HTTP ingest, batches of {BATCH} from {CLIENTS} clients: {batched:10.0f} events/s "
              f"({accepted}/{EVENTS} accepted, acknowledged by the broker)", flush=True)
        elapsed, accepted = asyncio.run(_post_all(url, settings.admin_token, events[EVENTS:], CLIENTS * 2))
        single = accepted / elapsed
        print(f"HTTP ingest, one event per request, {CLIENTS * 2} clients: {single:10.0f} events/s "
              f"({accepted}/{SINGLES} accepted)", flush=True)
        return {"batched_per_s": batched, "single_per_s": single}
    finally:
        api.stop()


def ingest_bench(broker: EmbeddedBroker, workdir: Path) -> None:
    check_latency()
    ingest_rate(broker, workdir)


def main() -> Any:
    workdir = Path(tempfile.mkdtemp(prefix="zhijian-bench-ingest-"))
    broker = EmbeddedBroker("127.0.0.1", free_port(), log_path=workdir / "tansu.log")
    broker.start()
    try:
        ingest_bench(broker, workdir)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
