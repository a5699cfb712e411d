"""Rule sets by revision: the record of every published document (the broker topic only carries the change)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from zhijian.store.schema import rule_sets


class RuleSets:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, document: dict[str, Any], *, author: str, created_at: str, make: Any) -> tuple[int, dict[str, Any]]:
        """Store ``document`` as the next revision. ``make(document, revision)`` returns the
        final document and its digest (it stamps revision and version, and validates)."""
        for _ in range(5):  # two publishers racing for the same revision: retry with the next
            with self.engine.begin() as conn:
                latest = conn.execute(select(func.max(rule_sets.c.revision))).scalar() or 0
                revision = int(latest) + 1
                final, digest = make(document, revision)
                try:
                    conn.execute(rule_sets.insert().values(
                        revision=revision, version=final["version"], digest=digest, author=author,
                        created_at=created_at, document=json.dumps(final, ensure_ascii=False, sort_keys=True)))
                except IntegrityError:
                    continue
            return revision, final
        raise RuntimeError("could not allocate a rule-set revision")

    def latest(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(rule_sets.c.document).order_by(rule_sets.c.revision.desc()).limit(1)).first()
        return json.loads(row[0]) if row else None

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        columns = (rule_sets.c.revision, rule_sets.c.version, rule_sets.c.digest, rule_sets.c.author,
                   rule_sets.c.created_at)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*columns).order_by(rule_sets.c.revision.desc()).limit(limit)).all()
        return [dict(row._mapping) for row in rows]
