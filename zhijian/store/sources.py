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

from sqlalchemy import Boolean, Column, String, Table, Text, select, update

from zhijian.store.base import Store, metadata

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

ingest_sources = Table(
    "ingest_sources", metadata,
    Column("name", String(64), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("mapping", Text),  # JSON, or NULL: the body is already in the contract's shape
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", String(40), nullable=False),
)


class SourceError(ValueError):
    """Bad input for a source (a bad name, a name taken, a mapping that is not an object)."""


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    mapping: dict[str, Any] | None = field(default=None, compare=False)
    admin: bool = False  # an admin trying the ingest out with their own token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def add_source(store: Store, name: str, mapping: dict[str, Any] | None = None) -> str:
    """Register ``name`` and return its new token (shown once; only the hash is kept)."""
    if not NAME.match(name):
        raise SourceError("a source name is 1-64 letters, digits, '_', '.' or '-'")
    if mapping is not None and not isinstance(mapping, dict):
        raise SourceError("a mapping is a JSON object")
    token = "src_" + secrets.token_urlsafe(32)
    with store.engine.begin() as conn:
        if conn.execute(select(ingest_sources.c.name).where(ingest_sources.c.name == name)).first():
            raise SourceError(f"source {name!r} exists")
        conn.execute(ingest_sources.insert().values(
            name=name, token_sha256=token_digest(token), disabled=False, created_at=_now(),
            mapping=None if mapping is None else json.dumps(mapping, ensure_ascii=False, sort_keys=True)))
    return token


def disable_source(store: Store, name: str) -> bool:
    with store.engine.begin() as conn:
        return bool(conn.execute(update(ingest_sources).where(ingest_sources.c.name == name)
                                 .values(disabled=True)).rowcount)


def list_sources(store: Store) -> list[dict[str, Any]]:
    """Names, whether a mapping is set, state; never the token hash."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(ingest_sources.c.name, ingest_sources.c.mapping, ingest_sources.c.disabled,
                                   ingest_sources.c.created_at).order_by(ingest_sources.c.name)).mappings().all()
    return [{"name": r["name"], "mapping": r["mapping"] is not None, "disabled": bool(r["disabled"]),
             "created_at": r["created_at"]} for r in rows]


def source_for(store: Store, token: str) -> Source | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(ingest_sources).where(
            ingest_sources.c.token_sha256 == token_digest(token))).mappings().first()
    if row is None or row["disabled"]:
        return None
    return Source(row["name"], json.loads(row["mapping"]) if row["mapping"] else None)
