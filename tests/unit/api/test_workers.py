"""The API's routing to the worker that owns a key (api.workers), against fake worker pages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.workers import Workers, WorkerUnavailable
from stream.agents import expected_partition

TOPIC = "chat.messages"
PARTITIONS = 4


class FakeFloor:
    """Workers as health pages and conversation pages, with ownership that a test can move."""

    def __init__(self, owns: dict[str, list[int]]) -> None:
        self.owns = owns
        self.ready = dict.fromkeys(owns, True)
        self.down: set[str] = set()
        self.requests: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        base = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        self.requests.append(f"{base}{request.url.path}")
        if base in self.down:
            raise httpx.ConnectError("refused", request=request)
        mine = self.owns[base]
        if request.url.path == "/zhijian/health/":
            ready = self.ready[base]
            return httpx.Response(200, json={"ready": ready, "rebalancing": not ready,
                                             "owns": [f"{TOPIC}:{p}" for p in mine] if ready else []})
        if not self.ready[base]:
            return httpx.Response(503, json={"detail": "rebalancing"})
        if request.url.path.startswith("/zhijian/conversations/"):
            cid = request.url.path.split("/")[3]
            if expected_partition(cid.encode(), PARTITIONS) not in mine:
                return httpx.Response(421, json={"detail": "not mine"})
            return httpx.Response(200, json={"conversation_id": cid, "served_by": base})
        if request.url.path == "/zhijian/tally/":
            return httpx.Response(200, json={"agents": {f"agent-{p}": {"p": p} for p in mine}, "partitions": mine})
        return httpx.Response(404)


def floor(owns: dict[str, list[int]]) -> tuple[FakeFloor, Workers]:
    fake = FakeFloor(owns)
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))
    return fake, Workers(list(owns), PARTITIONS, client=client)


def conversations_by_partition() -> dict[int, str]:
    found: dict[int, str] = {}
    n = 0
    while len(found) < PARTITIONS:
        found.setdefault(expected_partition(f"conv-{n}".encode(), PARTITIONS), f"conv-{n}")
        n += 1
    return found


A, B, C = "http://w1:1", "http://w2:2", "http://w3:3"


@pytest.mark.parametrize("owns", [
    {A: [0, 1, 2, 3]},
    {A: [0, 2], B: [1, 3]},
    {A: [0], B: [1, 2], C: [3]},
])
async def test_every_conversation_reaches_the_worker_that_owns_its_partition(owns: dict[str, list[int]]) -> None:
    _, workers = floor(owns)
    for partition, cid in conversations_by_partition().items():
        response = await workers.fetch(TOPIC, cid, f"/zhijian/conversations/{cid}/")
        assert response.status_code == 200
        expected = next(url for url, mine in owns.items() if partition in mine)
        assert response.json()["served_by"] == expected
    await workers.close()


async def test_a_moved_partition_is_found_again_after_the_old_owner_says_421() -> None:
    fake, workers = floor({A: [0, 1], B: [2, 3]})
    cid = conversations_by_partition()[0]
    assert (await workers.fetch(TOPIC, cid, f"/zhijian/conversations/{cid}/")).json()["served_by"] == A
    fake.owns = {A: [1], B: [0, 2, 3]}  # within the cache second: the API still believes A owns 0
    assert (await workers.fetch(TOPIC, cid, f"/zhijian/conversations/{cid}/")).json()["served_by"] == B
    await workers.close()


async def test_nobody_owning_the_partition_or_a_rebalance_is_unavailable_not_a_wrong_answer() -> None:
    fake, workers = floor({A: [0, 1], B: [2, 3]})
    by_partition = conversations_by_partition()
    fake.down.add(B)  # killed: its partitions are nobody's until the group rebalances
    with pytest.raises(WorkerUnavailable, match="no reachable worker owns partition 2"):
        await workers.fetch(TOPIC, by_partition[2], f"/zhijian/conversations/{by_partition[2]}/")
    # A still answers for its own
    own = by_partition[0]
    assert (await workers.fetch(TOPIC, own, f"/zhijian/conversations/{own}/")).json()["served_by"] == A
    fake.ready[A] = False
    workers.invalidate()
    with pytest.raises(WorkerUnavailable, match="rebalancing"):
        await workers.fetch(TOPIC, by_partition[0], f"/zhijian/conversations/{by_partition[0]}/")
    await workers.close()


async def test_two_workers_claiming_one_partition_is_unavailable() -> None:
    _, workers = floor({A: [0, 1], B: [1, 2, 3]})
    cid = conversations_by_partition()[1]
    with pytest.raises(WorkerUnavailable, match="changing hands"):
        await workers.fetch(TOPIC, cid, f"/zhijian/conversations/{cid}/")
    await workers.close()


async def test_gather_needs_every_partition_exactly_once() -> None:
    fake, workers = floor({A: [0, 2], B: [1, 3]})
    bodies: list[dict[str, Any]] = await workers.gather(TOPIC, "/zhijian/tally/")
    assert sorted(a for body in bodies for a in body["agents"]) == ["agent-0", "agent-1", "agent-2", "agent-3"]
    fake.down.add(B)
    workers.invalidate()
    with pytest.raises(WorkerUnavailable, match=r"partitions \[1, 3\]"):
        await workers.gather(TOPIC, "/zhijian/tally/")
    fake.down.clear()
    fake.owns = {A: [0, 1, 2], B: [1, 3]}
    workers.invalidate()
    with pytest.raises(WorkerUnavailable, match="two owners"):
        await workers.gather(TOPIC, "/zhijian/tally/")
    await workers.close()


async def test_a_dns_name_expands_to_one_worker_per_address() -> None:
    """``dns+http://name:port`` (a headless Service, a scaled compose service) → every address of the name."""
    workers = Workers(["dns+http://localhost:6123", "http://w9:9"], PARTITIONS,
                      client=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))))
    expanded = await workers.expand()
    assert "http://127.0.0.1:6123" in expanded and expanded[-1] == "http://w9:9"
    assert all(url.endswith(":6123") for url in expanded[:-1])
    nobody = Workers(["dns+http://no-such-host.invalid:6066"], PARTITIONS,
                     client=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))))
    with pytest.raises(WorkerUnavailable, match="resolves to nothing"):
        await nobody.owner(TOPIC, "conv-1")
    await workers.close()
    await nobody.close()
