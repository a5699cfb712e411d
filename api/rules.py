"""Rule-set endpoints: read the rules in force, publish a new revision, see the history.

Publishing validates the document (422 with the reason if invalid), stores it in SQL as the
next revision (the record) and sends it on the compacted rules topic, from which every
running worker picks it up without a restart.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from api.auth import Auth
from api.deps import RuleEditor, Viewer
from api.publisher import Publisher
from api.schemas import RuleHistoryOut, RulesOut, RulesSaved, errors
from detectors import RuleSetError, load_ruleset, parse_ruleset
from detectors.ruleset import with_revision
from zhijian.store.database import Database


def _stamp(document: dict[str, Any], revision: int) -> tuple[dict[str, Any], str]:
    final = with_revision(document, revision)  # version "r<revision>": what findings record
    ruleset = parse_ruleset(final)
    return final, ruleset.digest


def router(store: Database, publisher: Publisher, auth: Auth) -> APIRouter:
    api = APIRouter(prefix="/api/rules")

    def current() -> dict[str, Any]:
        document = store.rulesets.latest()
        ruleset = parse_ruleset(document) if document else load_ruleset()
        return {"revision": ruleset.revision, "version": ruleset.version, "digest": ruleset.digest,
                "document": dict(ruleset.document)}

    @api.get("", response_model=RulesOut, responses=errors(401, 403))
    async def get_rules(_: Viewer) -> dict[str, Any]:
        return await asyncio.to_thread(current)

    @api.put("", response_model=RulesSaved, responses=errors(401, 403))
    async def put_rules(who: RuleEditor, document: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Publish a new rule set (422, in FastAPI's list-of-errors shape, when it is not valid)."""
        try:
            parse_ruleset(with_revision(document, 1))  # validate before anything is stored
        except (RuleSetError, ValueError, TypeError, KeyError, AttributeError) as exc:
            message = str(exc) if isinstance(exc, RuleSetError) else f"not a valid rule set ({type(exc).__name__})"
            raise HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["body"], "msg": message,
                                                          "input": None}]) from None
        created_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        revision, final = await asyncio.to_thread(
            store.rulesets.save, document, author=who.username, created_at=created_at, make=_stamp
        )
        await publisher.publish("ruleset", final)
        ruleset = parse_ruleset(final)
        return {"revision": revision, "version": ruleset.version, "digest": ruleset.digest}

    @api.get("/history", response_model=RuleHistoryOut, responses=errors(401, 403))
    async def history(_: Viewer) -> dict[str, Any]:
        return {"revisions": await asyncio.to_thread(store.rulesets.history)}

    return api
