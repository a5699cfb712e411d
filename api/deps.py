"""Typed FastAPI dependencies: the signed-in user and their permissions, and the path/query
types shared by the routers (ids without control characters, 64-bit times).

The application keeps its ``Auth`` in ``app.state.auth`` (see ``api.app.create_app``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from api.auth import Auth
from zhijian.store.users import Principal

INT64_MAX = 2**63 - 1
# an id: no control characters (they never name a record, and PostgreSQL refuses NUL)
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"


def auth_of(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


def current_user(request: Request) -> Principal:
    """The signed-in user (401 without a valid bearer token). Sync: the session lookup is a query."""
    return auth_of(request).require(request)


def permission(name: str) -> Callable[[Request], Principal]:
    """A dependency: the signed-in user, if their role has permission ``name`` (else 403)."""
    def dependency(request: Request) -> Principal:
        return auth_of(request).allowed(name)(request)
    dependency.__name__ = f"may_{name}"
    return dependency


CurrentUser = Annotated[Principal, Depends(current_user)]
Viewer = Annotated[Principal, Depends(permission("view"))]
Claimer = Annotated[Principal, Depends(permission("claim"))]
Appealer = Annotated[Principal, Depends(permission("appeal"))]
Decider = Annotated[Principal, Depends(permission("decide_appeal"))]
Rewarder = Annotated[Principal, Depends(permission("bonus"))]
RuleEditor = Annotated[Principal, Depends(permission("rules"))]
UserAdmin = Annotated[Principal, Depends(permission("users"))]


def id_path(what: str, max_length: int = 128) -> Any:
    return Path(min_length=1, max_length=max_length, pattern=ID_PATTERN, description=what)


EpochMs = Annotated[int | None, Query(ge=0, le=INT64_MAX, description="epoch milliseconds")]
