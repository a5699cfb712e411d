"""One handler turns a store error's kind into the documented HTTP answer; a route just lets it through."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from api import store_errors
from zhijian.store.errors import (
    AppealError,
    ClaimError,
    Kind,
    ReviewError,
    SourceError,
    StoreError,
    UnknownUser,
    UserError,
    UserExists,
)


def answer_to(error: StoreError) -> httpx.Response:
    """POST to an app whose one route raises ``error`` (in process, over httpx's ASGI transport)."""
    app = FastAPI()
    store_errors.install(app)

    @app.post("/step")
    async def step() -> None:
        raise error

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://store.test") as http:
            return await http.post("/step")

    return asyncio.run(send())


@pytest.mark.parametrize("error", [AppealError("no finding 'f1'", "not_found"), ClaimError("no alert 'x'", "not_found"),
                                   ReviewError("conversation 'c' is not scored (yet)", "not_found"),
                                   UnknownUser("no user 'bob'")])
def test_not_found_has_one_body_whatever_the_record(error: StoreError) -> None:
    answer = answer_to(error)
    assert (answer.status_code, answer.json()) == (404, {"detail": "not found"})  # as for an out-of-scope record


@pytest.mark.parametrize("error", [AppealError("appeal a1 is already accepted"), ClaimError("claimed by ann"),
                                   ReviewError("the review of c is signed off: appeal instead"),
                                   UserExists("user 'bob' exists"), SourceError("source 'x' exists", "conflict")])
def test_a_conflict_says_why(error: StoreError) -> None:
    answer = answer_to(error)
    assert (answer.status_code, answer.json()) == (409, {"detail": str(error)})


@pytest.mark.parametrize(("error", "loc"), [(UserError("too short", field="password"), ["body", "password"]),
                                            (ReviewError("'x' is not a human item", "invalid"), ["body"])])
def test_invalid_input_is_a_422_in_fastapis_own_shape(error: StoreError, loc: list[str]) -> None:
    answer = answer_to(error)
    assert answer.status_code == 422
    assert answer.json() == {"detail": [{"type": "value_error", "loc": loc, "msg": str(error), "input": None}]}


def test_every_kind_has_a_status() -> None:
    kinds: tuple[Kind, ...] = ("not_found", "conflict", "invalid")
    assert {kind: store_errors.STATUS[kind] for kind in kinds} == {"not_found": 404, "conflict": 409, "invalid": 422}
    assert (UserError("x").kind, UserExists("x").kind, UnknownUser("x").kind, AppealError("x").kind) == (
        "invalid", "conflict", "not_found", "conflict")
