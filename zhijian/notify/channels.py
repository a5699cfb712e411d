"""One worker per channel: its own queue, rate limit, digest of repeats, retries with backoff.

A receiver that fails or hangs holds up only its own queue; the counters show it on the
notifier's health page. Errors are recorded by kind (HTTP status, exception type), never with
the URL or the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from zhijian.notify.cards import alert_card, body_for, digest_card, encode
from zhijian.notify.config import Channel
from zhijian.notify.signing import dingtalk_sign, feishu_sign, webhook_signature

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000


@dataclass
class ChannelStats:
    sent: int = 0
    failed: int = 0  # given up after the retries
    retries: int = 0
    digested: int = 0  # repeats folded into a digest instead of pushed one by one
    digests: int = 0
    rate_limited: int = 0  # pushes that waited for the rate limit
    dropped: int = 0  # the queue was full
    queued: int = 0
    last_error: str | None = None
    last_sent_at: float | None = None


@dataclass(frozen=True)
class Push:
    title: str
    markdown: str


def build_request(channel: Channel, push: Push, *, now: float | None = None) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) for one push, signed as the channel's platform documents it."""
    url = channel.resolved_url()
    if not url:
        raise LookupError(f"{channel.url_env or 'url'} is not set")
    now = time.time() if now is None else now
    secret = channel.secret()
    body = body_for(channel.kind, push.title, push.markdown)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if channel.kind == "dingtalk" and secret:
        ts_ms = int(now * 1000)
        url += ("&" if "?" in url else "?") + f"timestamp={ts_ms}&sign={dingtalk_sign(secret, ts_ms)}"
    elif channel.kind == "feishu" and secret:
        ts_s = int(now)
        body = {"timestamp": str(ts_s), "sign": feishu_sign(secret, ts_s), **body}
    data = encode(body)
    if channel.kind == "webhook" and secret:
        ts_s = int(now)
        headers["X-Zhijian-Timestamp"] = str(ts_s)
        headers["X-Zhijian-Signature"] = webhook_signature(secret, ts_s, data)
    return url, data, headers


def platform_error(kind: str, response: httpx.Response) -> str | None:
    """The platform's own error in a 200 answer (errcode / code), else None."""
    if response.status_code >= 300:
        return f"HTTP {response.status_code}"
    if kind == "webhook":
        return None
    try:
        answer = json.loads(response.content or b"{}")
    except ValueError:
        return "answer is not JSON"
    if not isinstance(answer, Mapping):
        return None
    for key in ("errcode", "code", "StatusCode"):
        if key in answer and answer[key] not in (0, "0"):
            return f"{key} {answer[key]}"
    return None


class ChannelWorker:
    def __init__(self, channel: Channel, client: httpx.AsyncClient, *, rate_per_minute: Callable[[], int],
                 digest_window_s: Callable[[], float], dashboard_url: Callable[[], str],
                 backoff_s: float = 0.5) -> None:
        self.channel = channel
        self.client = client
        self.rate_per_minute, self.digest_window_s, self.dashboard_url = rate_per_minute, digest_window_s, dashboard_url
        self.backoff_s = backoff_s
        self.stats = ChannelStats()
        self.queue: asyncio.Queue[Push] = asyncio.Queue(QUEUE_SIZE)
        self.sent_times: deque[float] = deque()
        self.last_pushed: dict[tuple[str, str | None], float] = {}
        self.held: dict[tuple[str, str | None], int] = {}
        self.task: asyncio.Task[None] | None = None
        self.timers: set[asyncio.Task[None]] = set()
        self.progress = asyncio.Event()  # set on every change of the counters

    async def until(self, predicate: Callable[[ChannelStats], bool], timeout_s: float = 30.0) -> None:
        """Wait (on events) until the counters satisfy ``predicate``."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self.stats):
                self.progress.clear()
                await self.progress.wait()

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        for task in [*self.timers, *([self.task] if self.task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def offer(self, push: Push) -> bool:
        try:
            self.queue.put_nowait(push)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            return False
        self.stats.queued += 1
        return True

    def offer_alert(self, alert: Mapping[str, Any]) -> None:
        """Push the alert, or fold it into the digest of its rule and team if one was pushed recently."""
        key = (str(alert.get("rule")), alert.get("team_id"))
        now = time.monotonic()
        window = self.digest_window_s()
        last = self.last_pushed.get(key)
        if last is not None and window > 0 and now - last < window:
            self.stats.digested += 1
            self.held[key] = self.held.get(key, 0) + 1
            if self.held[key] == 1:
                timer = asyncio.create_task(self._flush_digest(key, last + window - now))
                self.timers.add(timer)
                timer.add_done_callback(self.timers.discard)
            return
        self.last_pushed[key] = now
        self.offer(Push(*alert_card(alert, self.dashboard_url())))

    async def _flush_digest(self, key: tuple[str, str | None], delay_s: float) -> None:
        await asyncio.sleep(max(delay_s, 0.0))
        count = self.held.pop(key, 0)
        if count:
            self.last_pushed[key] = time.monotonic()
            self.stats.digests += 1
            self.offer(Push(*digest_card(key[0], key[1], count, self.digest_window_s(), self.dashboard_url())))

    async def _rate_limit(self) -> None:
        limit = self.rate_per_minute()
        if limit <= 0:
            return
        while True:
            now = time.monotonic()
            while self.sent_times and now - self.sent_times[0] >= 60.0:
                self.sent_times.popleft()
            if len(self.sent_times) < limit:
                self.sent_times.append(now)
                return
            self.stats.rate_limited += 1
            self.progress.set()
            await asyncio.sleep(60.0 - (now - self.sent_times[0]))

    async def run(self) -> None:
        while True:
            push = await self.queue.get()
            await self._rate_limit()
            await self.deliver(push)

    async def deliver(self, push: Push) -> bool:
        try:
            return await self._deliver(push)
        finally:
            self.progress.set()

    async def _deliver(self, push: Push) -> bool:
        for attempt in range(self.channel.retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                url, data, headers = build_request(self.channel, push)
                response = await self.client.post(url, content=data, headers=headers, timeout=self.channel.timeout_s)
                error = platform_error(self.channel.kind, response)
            except LookupError as exc:
                error = str(exc)
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            if error is None:
                self.stats.sent += 1
                self.stats.last_sent_at = time.time()
                return True
            self.stats.last_error = error
            log.warning("channel %s: push failed (%s), attempt %d", self.channel.name, error, attempt + 1)
        self.stats.failed += 1
        return False

    def health(self) -> dict[str, Any]:
        return {"kind": self.channel.kind, "waiting": self.queue.qsize(), **asdict(self.stats)}
