"""The audit trail: who did what to which record, written in the same transaction as the change."""

from __future__ import annotations

import datetime
import json
from typing import Any

from sqlalchemy import Connection, Engine, select

from zhijian.store.schema import audit


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class Audit:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def trail(self, subject: str | None = None) -> list[dict[str, Any]]:
        query = select(audit).order_by(audit.c.id)
        if subject is not None:
            query = query.where(audit.c.subject == subject)
        with self.engine.connect() as conn:
            return [dict(r) | {"detail": json.loads(r["detail"])} for r in conn.execute(query).mappings()]

    def add(self, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        """One entry in a transaction of its own (a step that changes nothing else, like a push's escalation)."""
        with self.engine.begin() as conn:
            self.record(conn, actor, action, subject, detail)

    @staticmethod
    def record(conn: Connection, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        """One entry, inside the caller's transaction."""
        conn.execute(audit.insert().values(at=now_iso(), actor=actor, action=action, subject=subject,
                                           detail=json.dumps(detail, ensure_ascii=False, sort_keys=True)))
