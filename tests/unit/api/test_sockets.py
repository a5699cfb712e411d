"""A client that does not read is dropped, and the others keep receiving (api/feed.py Hub, api/sockets.py
serve): memory stays bounded by the per-client queue, the slow page is told to reconnect (1013)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from api.alerts import Delivery
from api.connections import Connections
from api.feed import SUBSCRIBER_QUEUE, Hub
from api.sockets import serve
from zhijian.store.users import Principal


def test_the_hub_drops_a_subscriber_whose_queue_is_full_and_keeps_the_others() -> None:
    async def scenario() -> None:
        hub = Hub()
        stuck, reader = hub.subscribe(), hub.subscribe()
        got: list[str | None] = []
        for n in range(SUBSCRIBER_QUEUE + 10):
            hub.publish(f"m{n}")
            got.append(reader.get_nowait())  # a reader keeps up
        assert got == [f"m{n}" for n in range(SUBSCRIBER_QUEUE + 10)]
        assert (hub.subscribers, hub.dropped) == (1, 1)
        left = [stuck.get_nowait() for _ in range(stuck.qsize())]
        assert len(left) == SUBSCRIBER_QUEUE  # bounded: nothing was added after the drop
        # the oldest queued one made room for the request to reconnect (None), which comes last
        assert left[-1] is None and left[:-1] == [f"m{n}" for n in range(1, SUBSCRIBER_QUEUE)]
        hub.publish("after")
        assert stuck.empty() and reader.get_nowait() == "after"
    asyncio.run(scenario())


class Socket:
    """The slice of a starlette WebSocket that ``serve`` uses; ``gate`` holds every send (a client that
    does not read: the kernel's buffers are full)."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.done = asyncio.Event()
        self._never = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(text)

    async def receive_text(self) -> str:
        await self._never.wait()  # the client says nothing
        return ""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


async def until(condition: Any, what: str, timeout_s: float = 10.0) -> None:
    """Yield to the event loop until ``condition()`` holds (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0)


async def heartbeat() -> dict[str, Any]:
    return {"kind": "heartbeat"}


def test_a_client_that_does_not_read_is_disconnected_while_the_others_get_everything() -> None:
    async def scenario() -> None:
        hub, connections = Hub(), Connections(None)
        who = Principal("sup", "supervisor")
        gate = asyncio.Event()
        slow, fast = Socket(gate), Socket()
        sessions = [asyncio.create_task(serve(s, hub, connections, who, heartbeat=heartbeat, heartbeat_s=3600))
                    for s in (slow, fast)]
        await until(lambda: hub.subscribers == 2, "both subscribed")
        total = SUBSCRIBER_QUEUE + 50
        for n in range(total):
            hub.publish(f"alert-{n}")
            await asyncio.sleep(0)  # the event loop runs the senders between alerts, as the feed does
        await until(lambda: len(fast.sent) == total, "the fast client to get every alert")
        assert fast.sent == [f"alert-{n}" for n in range(total)]
        assert (hub.dropped, hub.subscribers) == (1, 1)  # the slow one is out, the fast one is still in
        gate.set()  # the slow client reads again: what it had queued, then the request to reconnect
        await asyncio.wait_for(sessions[0], 10)
        assert slow.closed == (1013, "too slow; reconnect")
        # what it had queued, in order, and not more than its queue holds (the rest it reloads on reconnecting)
        numbers = [int(text.removeprefix("alert-")) for text in slow.sent]
        assert numbers == sorted(numbers) and len(numbers) <= SUBSCRIBER_QUEUE
        hub.publish("later")
        await until(lambda: fast.sent[-1] == "later", "the fast client to get a later alert")
        assert not sessions[1].done() and len(connections) == 1
        sessions[1].cancel()
        await asyncio.gather(sessions[1], return_exceptions=True)
    asyncio.run(scenario())


def test_metrics_count_the_sockets_and_the_slow_clients_dropped(shared_api: Any) -> None:
    """GET /metrics of the in-process app: a client per hub while a socket is open, the drops counted."""
    def metric(name: str) -> float:
        text = shared_api.client.get("/metrics").text
        return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name)))

    assert metric('zhijian_websocket_slow_clients_dropped_total{feed="alerts"}') == 0.0
    ticket = shared_api.client.post("/api/ws-ticket", headers=shared_api.admin).json()["ticket"]
    with shared_api.client.websocket_connect(f"/ws/alerts?ticket={ticket}") as socket:
        assert '"ready"' in socket.receive_text()
        assert metric('zhijian_websocket_clients{feed="alerts"}') == 1.0
        hub = shared_api.client.app.state.hub
        stuck = shared_api.client.portal.call(hub.subscribe)  # a subscriber that never reads
        for n in range(SUBSCRIBER_QUEUE + 1):
            shared_api.client.portal.call(hub.publish, f'{{"kind": "probe", "n": {n}}}')
        left = [shared_api.client.portal.call(stuck.get_nowait) for _ in range(SUBSCRIBER_QUEUE)]
        assert left[-1] is None and stuck.empty()  # dropped: told to reconnect, nothing queued after that
    assert metric('zhijian_websocket_slow_clients_dropped_total{feed="alerts"}') >= 1.0


def test_an_alert_replayed_and_also_queued_live_reaches_the_socket_once() -> None:
    """The socket subscribes before its replay, so an alert stored meanwhile is both replayed and
    queued live (and the topic is at-least-once): the client gets each revision once, later revisions
    still, and nothing outside its team."""
    async def scenario() -> None:
        hub, connections = Hub(), Connections(None)
        who = Principal("lead", "floor_lead", team_id="t1")
        delivery = Delivery(cast(Any, None), who)  # admit() does not touch the store
        first = {"alert_id": "a1", "revision": 0, "team_id": "t1", "rule": "banned_term"}

        def replay() -> list[str]:  # runs after subscribing: what SQL had, and meanwhile the feed pushed it too
            hub.publish(json.dumps(first))
            delivery.sent(first)
            return [json.dumps(first)]

        socket = Socket()
        session = asyncio.create_task(serve(socket, hub, connections, who, heartbeat=heartbeat, heartbeat_s=3600,
                                            initial=replay(), visible=delivery.admit))
        await until(lambda: hub.subscribers == 1, "subscribed")
        for frame in ({**first, "revision": 1}, {**first, "revision": 1}, {**first, "alert_id": "a2", "team_id": "t2"},
                      {"kind": "action", "alert_id": "a1", "team_id": "t1", "verb": "claim"}):
            hub.publish(json.dumps(frame))
        await until(lambda: len(socket.sent) == 3, "the frames")
        got = [json.loads(text) for text in socket.sent]
        assert [(f.get("kind"), f["alert_id"], f.get("revision")) for f in got] == [
            (None, "a1", 0), (None, "a1", 1), ("action", "a1", None)]
        session.cancel()
        await asyncio.gather(session, return_exceptions=True)
    asyncio.run(scenario())
