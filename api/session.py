"""Login (throttled, hashing in its own pool), logout, WebSocket tickets, who am I, and user
management (admin): add, change password, disable. A session's sockets close (4401) as soon as
it ends here."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.auth import Auth, token_from
from api.connections import Connections
from api.deps import CurrentUser, UserAdmin, id_path
from api.login_guard import LoginGuard, TooManyAttempts
from api.schemas import LoginOut, TicketOut, UserChangeOut, UserOut, UsersOut, errors
from zhijian.core.passwords import MAX_LENGTH, MIN_LENGTH
from zhijian.store.database import Database


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    password: str = Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)
    role: Literal["admin", "supervisor", "floor_lead", "qa", "agent"]
    team_id: str | None = Field(default=None, max_length=128)
    agent_id: str | None = Field(default=None, max_length=128)
    display_name: str | None = Field(default=None, max_length=128)


class UserChange(BaseModel):
    password: str | None = Field(default=None, min_length=MIN_LENGTH, max_length=MAX_LENGTH)
    disabled: bool | None = None


def too_many(exc: TooManyAttempts) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after_s)})


def unprocessable(message: str, field: str) -> HTTPException:
    """A 422 in FastAPI's own shape (a list of errors), for checks made in code."""
    return HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["body", field], "msg": message,
                                                   "input": None}])


def router(users: Database, auth: Auth, connections: Connections, guard: LoginGuard) -> APIRouter:
    api = APIRouter()

    @api.post("/api/login", response_model=LoginOut, responses=errors(401, 429))
    async def login(body: LoginIn, request: Request) -> Any:
        address = request.client.host if request.client else "unknown"
        try:
            guard.check(body.username, address)
            result = await guard.run(lambda: users.sessions.login(body.username, body.password))
        except TooManyAttempts as exc:
            return too_many(exc)
        guard.record(body.username, address, ok=result is not None)
        if result is None:
            raise HTTPException(status_code=401, detail="wrong username or password")
        token, who = result
        return {"token": token, "user": who.as_dict()}

    @api.post("/api/logout", status_code=204, response_class=Response)
    async def logout(request: Request) -> Response:
        token = token_from(request.headers)
        if token:
            ended = await asyncio.to_thread(users.sessions.logout, token)
            auth.tickets.revoke(session=ended)
            connections.end_session(ended)
        return Response(status_code=204)

    @api.post("/api/ws-ticket", response_model=TicketOut, responses=errors(401))
    async def ws_ticket(who: CurrentUser) -> dict[str, Any]:
        """A one-time ticket for ``/ws/alerts?ticket=…`` or ``/ws/conversations?ticket=…`` (30 s)."""
        return {"ticket": auth.tickets.issue(who), "expires_in": int(auth.tickets.ttl_s)}

    @api.get("/api/me", response_model=UserOut, responses=errors(401))
    async def me(who: CurrentUser) -> dict[str, Any]:
        return who.as_dict()

    @api.get("/api/users", response_model=UsersOut, responses=errors(401, 403))
    async def list_users(_: UserAdmin) -> dict[str, Any]:
        return {"users": [u.as_dict() for u in await asyncio.to_thread(users.users.all)]}

    @api.post("/api/users", status_code=201, response_model=UserOut, responses=errors(401, 403, 409, 429))
    async def add_user(body: UserIn, _: UserAdmin) -> dict[str, Any]:
        try:
            who = await guard.run(lambda: users.users.add(
                body.username, body.password, role=body.role, team_id=body.team_id, agent_id=body.agent_id,
                display_name=body.display_name))
        except TooManyAttempts as exc:
            raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": "1"}) from None
        return who.as_dict()

    @api.patch("/api/users/{username}", response_model=UserChangeOut, responses=errors(401, 403, 404, 429))
    async def change_user(username: Annotated[str, id_path("user name", 64)], body: UserChange,
                          _: UserAdmin) -> dict[str, Any]:
        """A new password and/or disabled on/off; either ends every session of the user."""
        try:
            if body.password is not None:
                password = body.password
                await guard.run(lambda: users.users.set_password(username, password))
            if body.disabled is not None:
                await asyncio.to_thread(users.users.set_disabled, username, body.disabled)
        except TooManyAttempts as exc:
            raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": "1"}) from None
        auth.tickets.revoke(username=username)
        closed = connections.end_user(username)
        return {"username": username, "sessions_ended": True, "sockets_closed": closed}

    return api

