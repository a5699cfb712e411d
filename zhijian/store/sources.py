"""Ingest sources: who may post chat events over HTTP (``POST /api/events``).

Each source (a chat platform's callback, a relay script) has its own token; only the token's
SHA-256 is stored, like login sessions, so a database leak does not leak tokens. A source token can
only ingest: it is not a session and opens no other route. A source may carry a field mapping
(:mod:`zhijian.core.ingest_mapping`) that turns the platform's callback body into contract events.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, update

from zhijian.store.errors import SourceError
from zhijian.store.schema import ingest_sources

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    mapping: dict[str, Any] | None = field(default=None, compare=False)
    admin: bool = False  # an admin trying the ingest out with their own token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Sources:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, mapping: dict[str, Any] | None = None) -> str:
        """Register ``name`` and return its new token (shown once; only the hash is kept)."""
        if not NAME.match(name):
            raise SourceError("a source name is 1-64 letters, digits, '_', '.' or '-'", field="name")
        if mapping is not None and not isinstance(mapping, dict):
            raise SourceError("a mapping is a JSON object", field="mapping")
        token = "src_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            if conn.execute(select(ingest_sources.c.name).where(ingest_sources.c.name == name)).first():
                raise SourceError(f"source {name!r} exists", "conflict")
            conn.execute(ingest_sources.insert().values(
                name=name, token_sha256=token_digest(token), disabled=False, created_at=_now(),
                mapping=None if mapping is None else json.dumps(mapping, ensure_ascii=False, sort_keys=True)))
        return token

    def disable(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(update(ingest_sources).where(ingest_sources.c.name == name)
                                     .values(disabled=True)).rowcount)

    def all(self) -> list[dict[str, Any]]:
        """Names, whether a mapping is set, state; never the token hash."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ingest_sources.c.name, ingest_sources.c.mapping, ingest_sources.c.disabled,
                                       ingest_sources.c.created_at).order_by(ingest_sources.c.name)).mappings().all()
        return [{"name": r["name"], "mapping": r["mapping"] is not None, "disabled": bool(r["disabled"]),
                 "created_at": r["created_at"]} for r in rows]

    def for_token(self, token: str) -> Source | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(ingest_sources).where(
                ingest_sources.c.token_sha256 == token_digest(token))).mappings().first()
        if row is None or row["disabled"]:
            return None
        return Source(row["name"], json.loads(row["mapping"]) if row["mapping"] else None)
