"""Login, logout, who am I, and user management (admin)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from api.auth import Auth, token_from
from zhijian.store.users import ROLES, Principal, UserError, UserStore


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: str
    team_id: str | None = None
    agent_id: str | None = None
    display_name: str | None = None


def router(users: UserStore, auth: Auth) -> APIRouter:
    api = APIRouter()

    @api.post("/api/login")
    async def login(body: LoginIn) -> dict[str, Any]:
        result = await asyncio.to_thread(users.login, body.username, body.password)
        if result is None:
            raise HTTPException(status_code=401, detail="wrong username or password")
        token, who = result
        return {"token": token, "user": who.as_dict()}

    @api.post("/api/logout", status_code=204)
    async def logout(request: Request) -> None:
        token = token_from(request.headers, request.query_params)
        if token:
            await asyncio.to_thread(users.logout, token)

    @api.get("/api/me")
    async def me(who: Principal = Depends(auth.require)) -> dict[str, Any]:
        return who.as_dict()

    @api.get("/api/users", dependencies=[Depends(auth.allowed("users"))])
    async def list_users() -> dict[str, Any]:
        return {"users": [u.as_dict() for u in await asyncio.to_thread(users.list_users)]}

    @api.post("/api/users", status_code=201, dependencies=[Depends(auth.allowed("users"))])
    async def add_user(body: UserIn) -> dict[str, Any]:
        if body.role not in ROLES:
            raise HTTPException(status_code=422, detail=f"role must be one of {', '.join(ROLES)}")
        try:
            who = await asyncio.to_thread(lambda: users.add_user(
                body.username, body.password, role=body.role, team_id=body.team_id, agent_id=body.agent_id,
                display_name=body.display_name))
        except UserError as exc:
            raise HTTPException(status_code=409 if "exists" in str(exc) else 422, detail=str(exc)) from None
        return who.as_dict()

    return api
