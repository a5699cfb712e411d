"""Authentication and authorisation for REST and WebSocket.

A request carries a bearer token (header, or ``token`` query parameter for browsers and
WebSockets): a session token from ``POST /api/login``, or the operator's admin token
(``ZHIJIAN_ADMIN_TOKEN``, printed by ``make run``). Every route then checks a permission,
and every record it returns or pushes is filtered by the user's scope (a floor lead sees
their team, an agent themselves).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping

from fastapi import HTTPException, Request, WebSocket, status

from zhijian.store.users import Principal, UserStore

POLICY_VIOLATION = 1008
ADMIN = Principal("admin", "admin", display_name="admin (token)")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_from(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return query.get("token") or None


class Auth:
    def __init__(self, users: UserStore | None, admin_token: str) -> None:
        if not admin_token:
            raise ValueError("an admin token is required")
        self.users = users
        self._admin = admin_token.encode()

    def principal(self, token: str | None) -> Principal | None:
        if not token:
            return None
        if hmac.compare_digest(token.encode(), self._admin):
            return ADMIN
        return self.users.principal_for(token) if self.users is not None else None

    def require(self, request: Request) -> Principal:
        """FastAPI dependency (sync: runs in the thread pool, the session lookup is a query)."""
        principal = self.principal(token_from(request.headers, request.query_params))
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

    def websocket_principal(self, websocket: WebSocket) -> Principal | None:
        return self.principal(token_from(websocket.headers, websocket.query_params))


def in_scope(principal: Principal, record: Mapping[str, object]) -> None:
    """404 (not 403: do not confirm that it exists) when the record is outside the user's scope."""
    if not principal.sees(dict(record)):
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="not found")
