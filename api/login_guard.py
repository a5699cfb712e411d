"""Sign-in protection: throttling of failed logins per user and per address (exponential
backoff, answered 429 with ``Retry-After``), and a bounded pool of its own for Argon2 so a
burst of logins cannot take the threads that serve SQL."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


class Throttle:
    """Failed logins per key. After ``free`` failures every further one blocks the key for
    ``base_s`` × 2^(n − 1) seconds (n = failures beyond the free ones), at most ``max_s``."""

    def __init__(self, free: int, base_s: float = 1.0, max_s: float = 900.0, capacity: int = 50_000,
                 forget_after_s: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.base_s, self.max_s = free, base_s, max_s
        self.capacity, self.forget_after_s, self.clock = capacity, forget_after_s, clock
        self._keys: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        with self._lock:
            entry = self._keys.get(key)
            return max(0.0, entry.blocked_until - self.clock()) if entry else 0.0

    def failed(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            entry = self._keys.pop(key, None) or _Failures()
            if now - entry.last > self.forget_after_s:
                entry = _Failures()
            entry.count += 1
            entry.last = now
            beyond = entry.count - self.free
            if beyond > 0:
                entry.blocked_until = now + min(self.base_s * 2 ** min(beyond - 1, 30), self.max_s)
            self._keys[key] = entry  # newest last: the oldest are dropped first when full
            while len(self._keys) > self.capacity:
                self._keys.popitem(last=False)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)


class TooManyAttempts(Exception):
    def __init__(self, retry_after_s: float, message: str) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class LoginGuard:
    """Throttles per user (3 free failures) and per address (10), and runs password hashing in
    ``workers`` threads of its own with at most ``max_waiting`` calls queued."""

    def __init__(self, *, workers: int = 2, max_waiting: int = 16, user_free: int = 3, address_free: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.by_user = Throttle(user_free, clock=clock)
        self.by_address = Throttle(address_free, clock=clock)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="argon2")
        self._max_waiting = max_waiting
        self._pending = 0

    def check(self, username: str, address: str) -> None:
        """Raise TooManyAttempts while the user or the address is blocked."""
        wait = max(self.by_user.retry_after(_user_key(username)), self.by_address.retry_after(address))
        if wait > 0:
            raise TooManyAttempts(wait, f"too many failed sign-ins; try again in {math.ceil(wait)} s")

    def record(self, username: str, address: str, ok: bool) -> None:
        if ok:
            self.by_user.succeeded(_user_key(username))
        else:
            self.by_user.failed(_user_key(username))
            self.by_address.failed(address)

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` (it hashes a password) in the hashing pool; refuse when too many are queued."""
        if self._pending >= self._max_waiting:
            raise TooManyAttempts(1, "too many sign-ins at once; try again in a second")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _user_key(username: str) -> str:
    return username.strip().lower()
