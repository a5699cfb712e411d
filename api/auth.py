"""Bearer-token authentication (header, or ``token`` query parameter for browsers)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

from fastapi import HTTPException, Request, WebSocket, status

POLICY_VIOLATION = 1008


def new_token() -> str:
    return secrets.token_urlsafe(24)


class TokenAuth:
    def __init__(self, tokens: list[str]) -> None:
        if not tokens or not all(tokens):
            raise ValueError("at least one non-empty token is required")
        self._tokens = [t.encode() for t in tokens]

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        candidate = token.encode()
        # Compare against every token so timing does not reveal which one nearly matched.
        return any([hmac.compare_digest(candidate, t) for t in self._tokens])

    @staticmethod
    def token_from(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        header = headers.get("authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
        return query.get("token") or None

    def require(self, request: Request) -> None:
        """FastAPI dependency for REST routes."""
        if not self.valid(self.token_from(request.headers, request.query_params)):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def websocket_ok(self, websocket: WebSocket) -> bool:
        return self.valid(self.token_from(websocket.headers, websocket.query_params))
