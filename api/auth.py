"""Authentication and authorisation for REST and WebSocket.

A REST request carries a bearer token in the ``Authorization`` header (never in the URL): a
session token from ``POST /api/login``, or the operator's admin token (``ZHIJIAN_ADMIN_TOKEN``,
printed by ``make run``). A WebSocket signs in with a one-time ticket from ``POST /api/ws-ticket``
(valid 30 s, bound to the user and session). Every route then checks a permission, and every
record it returns or pushes is filtered by the user's scope (a floor lead sees their team, an
agent themselves).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from zhijian.store.database import Database
from zhijian.store.users import Principal

POLICY_VIOLATION = 1008
SIGNED_OUT = 4401  # a socket whose session ended (logout, expiry, password change, user disabled)
ADMIN = Principal("admin", "admin", display_name="admin (token)")
NOT_FOUND = "not found"  # one body for missing and out-of-scope records


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_from(headers: Mapping[str, str]) -> str | None:
    """The bearer token of the ``Authorization`` header (query strings are never read)."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


@dataclass(frozen=True, slots=True)
class Ticket:
    principal: Principal
    expires_at: float


class TicketBook:
    """One-time WebSocket tickets: random, single-use, valid ``ttl_s``, bound to a user and session."""

    def __init__(self, ttl_s: float = 30.0, capacity: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.capacity = capacity
        self.clock = clock
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, principal: Principal) -> str:
        ticket = secrets.token_urlsafe(24)
        now = self.clock()
        with self._lock:
            self._expire(now)
            self._tickets[ticket] = Ticket(principal, now + self.ttl_s)
            while len(self._tickets) > self.capacity:
                self._tickets.popitem(last=False)
        return ticket

    def redeem(self, ticket: str | None) -> Principal | None:
        """The ticket's principal if it is known and fresh; either way the ticket is spent."""
        if not ticket:
            return None
        with self._lock:
            found = self._tickets.pop(ticket, None)
        if found is None or found.expires_at < self.clock():
            return None
        return found.principal

    def revoke(self, *, session: str | None = None, username: str | None = None) -> int:
        """Spend the unused tickets of a session (logout) or of a user (password change, disable)."""
        with self._lock:
            doomed = [key for key, t in self._tickets.items()
                      if (session is not None and t.principal.session == session)
                      or (username is not None and t.principal.session is not None
                          and t.principal.username == username)]
            for key in doomed:
                del self._tickets[key]
        return len(doomed)

    def _expire(self, now: float) -> None:
        while self._tickets:
            oldest = next(iter(self._tickets.values()))
            if oldest.expires_at >= now:
                return
            self._tickets.popitem(last=False)


class Auth:
    def __init__(self, users: Database | None, admin_token: str) -> None:
        if not admin_token:
            raise ValueError("an admin token is required")
        self.users = users
        self._admin = admin_token.encode()
        self.tickets = TicketBook()

    def principal(self, token: str | None) -> Principal | None:
        if not token:
            return None
        if hmac.compare_digest(token.encode(), self._admin):
            return ADMIN
        return self.users.sessions.principal_for(token) if self.users is not None else None

    def require(self, request: Request) -> Principal:
        """FastAPI dependency (sync: runs in the thread pool, the session lookup is a query)."""
        principal = self.principal(token_from(request.headers))
        if principal is None:
            raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="missing or invalid bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        return principal

    def allowed(self, permission: str) -> Callable[[Request], Principal]:
        """A dependency: the user, if their role has ``permission`` (else 403)."""
        def dependency(request: Request) -> Principal:
            principal = self.require(request)
            if not principal.can(permission):
                raise HTTPException(status_code=status.HTTP_403_FORBIDDEN,
                                    detail=f"the {principal.role} role may not {permission.replace('_', ' ')}")
            return principal
        return dependency


def in_scope(principal: Principal, record: Mapping[str, object]) -> None:
    """404 (not 403: do not confirm that it exists) when the record is outside the user's scope."""
    if not principal.sees(dict(record)):
        raise not_found()


def not_found() -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
