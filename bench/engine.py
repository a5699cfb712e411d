"""The conversation engine in process: cost per event against conversation length, state size, memory.

Per-event cost must not grow with the conversation: conversations of 10, 200 and 1,000 messages are
fed through ``process_event`` the way the worker does (parse, process, encode the transcript line),
and the stored state is encoded as the changelog would get it after every event (the worst case:
a live conversation whose every event lands in its own checkpoint).
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from typing import Any

from stream.engine.conversation import default_rulebook, process_event
from stream.engine.records import encode_lines
from stream.engine.state import ConversationState
from zhijian.core.contract import parse_event

T0 = 1_795_000_000_000
AGENT = ["您好，请问有什么可以帮您？", "好的，我这边马上为您查询，请您稍等", "已经为您备注加急了，今天会发出",
         "这个颜色是有货的，您可以放心下单", "哦，这个不清楚呢", "亲，您的订单已经发货了，单号在订单详情里可以看到"]
CUSTOMER = ["在吗", "这个什么时候发货？", "能便宜一点吗", "我已经等了很久了", "好的谢谢", "快递到哪里了"]


def conversation(length: int, cid: str) -> list[bytes]:
    events = []
    for i in range(length):
        agent = i % 2 == 1
        events.append(json.dumps({
            "message_id": f"{cid}-{i}", "conversation_id": cid, "shop_id": "shop-1", "team_id": "t1",
            "agent_id": "a1" if agent else None, "customer_id": None if agent else "u1",
            "sender": "agent" if agent else "customer", "type": "message",
            "text": (AGENT if agent else CUSTOMER)[i % 6], "ts": T0 + i * 4000}, ensure_ascii=False).encode())
    return events


def per_event(length: int, repeats: int) -> tuple[float, float]:
    """(µs per event, mean encoded state bytes per event) over ``repeats`` conversations of ``length``."""
    book = default_rulebook()
    now = T0 + length * 4000 + 1000
    raws = [conversation(length, f"c{length}-{r}") for r in range(repeats)]
    total_ns = 0
    state_bytes = 0
    events = 0
    for raw_events in raws:
        state: ConversationState | None = None
        lines = []
        start = time.perf_counter_ns()
        for raw in raw_events:
            event = parse_event(raw, now_ms=now)
            outcome = process_event(state, event, now_ms=now, book=book)
            state = outcome.state
            lines.extend(outcome.lines)
            if len(lines) >= 500:  # the worker produces transcript lines in batches
                encode_lines(lines)
                lines = []
        encode_lines(lines)
        total_ns += time.perf_counter_ns() - start
        assert state is not None
        state_bytes += len(state.to_json())  # the size once the conversation is that long
        events += len(raw_events)
    return total_ns / events / 1000, state_bytes / len(raws)


def memory_per_conversation(count: int = 20_000, length: int = 12) -> float:
    """Bytes of Python heap per open conversation state (as the worker keeps them, decoded)."""
    book = default_rulebook()
    gc.collect()
    tracemalloc.start()
    states: dict[str, Any] = {}
    now = T0 + length * 4000 + 1000
    for c in range(count):
        state = None
        for raw in conversation(length, f"m{c}"):
            state = process_event(state, parse_event(raw, now_ms=now), now_ms=now, book=book).state
        states[f"m{c}"] = state
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return current / count


def main() -> dict[str, float]:
    for length in (10, 200, 1000):  # warm-up
        per_event(length, 1)
    rounds: dict[int, list[tuple[float, float]]] = {10: [], 200: [], 1000: []}
    for _ in range(5):  # interleaved rounds, the median of each: the machine is shared
        for length, repeats in ((10, 100), (200, 5), (1000, 1)):
            rounds[length].append(per_event(length, repeats))
    rows = {length: sorted(values)[len(values) // 2] for length, values in rounds.items()}
    for length, (us, size) in rows.items():
        print(f"engine in process, {length:>5}-message conversations: {us:6.1f} µs/event, "
              f"state {size:5.0f} bytes (changelog bytes per event at most this)", flush=True)
    spread = max(us for us, _ in rows.values()) / min(us for us, _ in rows.values())
    print(f"engine cost spread 10 → 1,000 messages: {spread:.2f}× (target ≤ 1.5×)")
    per_conv = memory_per_conversation()
    print(f"worker memory per open conversation (state objects, 12 messages each): {per_conv / 1024:.1f} KiB")
    return {"spread": spread, "bytes_1000": rows[1000][1], "per_conversation": per_conv}


if __name__ == "__main__":
    main()
