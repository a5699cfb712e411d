"""Rule-set endpoints: read the rules in force, publish a new revision, see the history.

Publishing validates the document (422 with the reason if invalid), stores it in SQL as the
next revision (the record) and sends it on the compacted rules topic, from which every
running worker picks it up without a restart.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Body, Depends, HTTPException

from detectors import RuleSetError, load_ruleset, parse_ruleset
from detectors.ruleset import with_revision
from zhijian.settings import Settings
from zhijian.storage import Store


class RulesPublisher:
    """One producer for the process, started on first use."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def publish(self, document: dict[str, Any]) -> None:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
                await producer.start()
                self._producer = producer
        await self._producer.send_and_wait(
            self.topic, key=b"ruleset", value=json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
        )

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def _stamp(document: dict[str, Any], revision: int) -> tuple[dict[str, Any], str]:
    final = with_revision(document, revision)  # version "r<revision>": what findings record
    ruleset = parse_ruleset(final)
    return final, ruleset.digest


def router(settings: Settings, store: Store, publisher: RulesPublisher, dependencies: list[Any]) -> APIRouter:
    api = APIRouter(prefix="/api/rules", dependencies=[Depends(d) for d in dependencies])

    def current() -> dict[str, Any]:
        document = store.latest_ruleset()
        ruleset = parse_ruleset(document) if document else load_ruleset()
        return {"revision": ruleset.revision, "version": ruleset.version, "digest": ruleset.digest,
                "document": dict(ruleset.document)}

    @api.get("")
    async def get_rules() -> dict[str, Any]:
        return await asyncio.to_thread(current)

    @api.put("")
    async def put_rules(document: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        try:
            parse_ruleset(with_revision(document, 1))  # validate before anything is stored
        except RuleSetError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        created_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        revision, final = await asyncio.to_thread(
            store.save_ruleset, document, author="admin", created_at=created_at, make=_stamp
        )
        await publisher.publish(final)
        ruleset = parse_ruleset(final)
        return {"revision": revision, "version": ruleset.version, "digest": ruleset.digest}

    @api.get("/history")
    async def history() -> dict[str, Any]:
        return {"revisions": await asyncio.to_thread(store.ruleset_history)}

    return api
