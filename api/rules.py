"""Rule-set endpoints: read the rules in force, publish a new revision, see the history.

Publishing validates the document (422 with the reason if invalid), stores it in SQL as the
next revision (the record) and sends it on the compacted rules topic, from which every
running worker picks it up without a restart.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException

from api.auth import Auth
from api.publisher import Publisher
from detectors import RuleSetError, load_ruleset, parse_ruleset
from detectors.ruleset import with_revision
from zhijian.store.base import Store
from zhijian.store.users import Principal


def _stamp(document: dict[str, Any], revision: int) -> tuple[dict[str, Any], str]:
    final = with_revision(document, revision)  # version "r<revision>": what findings record
    ruleset = parse_ruleset(final)
    return final, ruleset.digest


def router(store: Store, publisher: Publisher, auth: Auth) -> APIRouter:
    api = APIRouter(prefix="/api/rules")
    viewer = Depends(auth.allowed("view"))
    editor = Depends(auth.allowed("rules"))

    def current() -> dict[str, Any]:
        document = store.latest_ruleset()
        ruleset = parse_ruleset(document) if document else load_ruleset()
        return {"revision": ruleset.revision, "version": ruleset.version, "digest": ruleset.digest,
                "document": dict(ruleset.document)}

    @api.get("", dependencies=[viewer])
    async def get_rules() -> dict[str, Any]:
        return await asyncio.to_thread(current)

    @api.put("")
    async def put_rules(who: Principal = editor,
                        document: dict[str, Any] = Body(...)) -> dict[str, Any]:
        try:
            parse_ruleset(with_revision(document, 1))  # validate before anything is stored
        except RuleSetError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        created_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        revision, final = await asyncio.to_thread(
            store.save_ruleset, document, author=who.username, created_at=created_at, make=_stamp
        )
        await publisher.publish("ruleset", final)
        ruleset = parse_ruleset(final)
        return {"revision": revision, "version": ruleset.version, "digest": ruleset.digest}

    @api.get("/history", dependencies=[viewer])
    async def history() -> dict[str, Any]:
        return {"revisions": await asyncio.to_thread(store.ruleset_history)}

    return api
