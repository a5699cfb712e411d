"""The one place a store error becomes an HTTP answer: its ``kind`` picks the status, the body is the
documented one (``api.schemas.errors``): ``{"detail": "not found"}`` for a missing record (the same body as an
out-of-scope one), ``{"detail": reason}`` for a conflict, FastAPI's own list of errors for invalid input."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api.auth import NOT_FOUND
from zhijian.store.errors import StoreError

STATUS = {"not_found": 404, "conflict": 409, "invalid": 422}


async def store_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)  # registered for StoreError only
    status = STATUS[exc.kind]
    if exc.kind == "not_found":
        return JSONResponse({"detail": NOT_FOUND}, status_code=status)
    if exc.kind == "invalid":
        loc = ["body", exc.field] if exc.field else ["body"]
        return JSONResponse({"detail": [{"type": "value_error", "loc": loc, "msg": str(exc), "input": None}]},
                            status_code=status)
    return JSONResponse({"detail": str(exc)}, status_code=status)


def install(app: FastAPI) -> None:
    """Answer every ``StoreError`` a route lets through (create_app does this; so do tests that build an app)."""
    app.add_exception_handler(StoreError, store_error)
