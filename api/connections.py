"""The open WebSockets of this API process, per user and session, so that a socket closes
(4401) when its session ends: at once on logout, password change or user disable through this
process, and within ``check_every_s`` for anything else (expiry, a change made by another API
process or by ``zhijian user``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from zhijian.store.users import Principal

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Connection:
    principal: Principal
    signed_out: asyncio.Event = field(default_factory=asyncio.Event)


class Connections:
    def __init__(self, live_sessions: Callable[[Iterable[str]], set[str]] | None,
                 check_every_s: float = 5.0) -> None:
        self.live_sessions = live_sessions
        self.check_every_s = check_every_s
        self._open: set[Connection] = set()
        self._task: asyncio.Task[None] | None = None

    def open(self, principal: Principal) -> Connection:
        connection = Connection(principal)
        self._open.add(connection)
        return connection

    def close(self, connection: Connection) -> None:
        self._open.discard(connection)

    def __len__(self) -> int:
        return len(self._open)

    def end_session(self, session_id: str) -> int:
        return self._sign_out(lambda c: c.principal.session == session_id)

    def end_user(self, username: str) -> int:
        return self._sign_out(lambda c: c.principal.session is not None and c.principal.username == username)

    def _sign_out(self, matches: Callable[[Connection], bool]) -> int:
        ended = [c for c in self._open if matches(c)]
        for connection in ended:
            connection.signed_out.set()
        return len(ended)

    async def check(self) -> int:
        """Sign out every socket whose session is no longer valid; returns how many."""
        if self.live_sessions is None:
            return 0
        sessions = {c.principal.session for c in self._open if c.principal.session is not None}
        if not sessions:
            return 0
        alive = await asyncio.to_thread(self.live_sessions, sessions)
        return self._sign_out(lambda c: c.principal.session is not None and c.principal.session not in alive)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="session-check")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_every_s)
            try:
                await self.check()
            except Exception as exc:  # the database is away: check again next round
                log.warning("session check failed: %s", type(exc).__name__)
