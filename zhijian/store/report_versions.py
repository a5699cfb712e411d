"""Report versions: a changed result after a report was published re-issues that report as version N+1.

A standalone class over an SQLAlchemy engine with two tables of its own:

* ``report_versions`` — every issued version of a day's, week's or month's report: the scores it was made from
  (``snapshot``: per conversation agent, score and fatal; per agent the mean score), what changed against the
  version before (``changes``) and the files as written (CSV and HTML), so every earlier version stays
  retrievable whatever happened to the files on disk;
* ``report_stale`` — days whose results changed after their report went out (an appeal accepted, a review step,
  an offline question whose 24 hours ran out): the next ``zhijian rollup`` (or ``--reissue``) produces the day's,
  its week's and its month's report again, as a new version when anything in them moved.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from zhijian.store.schema import report_stale, report_versions


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def snapshot_of(rows: Sequence[Mapping[str, Any]], agents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a version's figures rest on: every conversation's agent, score and fatal flag; every agent's mean."""
    return {"conversations": {str(r["conversation_id"]): [r.get("agent_id"), float(r["score"]), bool(r["fatal"])]
                              for r in sorted(rows, key=lambda r: str(r["conversation_id"]))},
            "agents": {str(a["agent_id"]): a.get("mean_score")
                       for a in sorted(agents, key=lambda a: str(a["agent_id"]))}}


def changes_between(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Which conversations and agents moved, old → new (a conversation new to the period has ``old`` None)."""
    moved = []
    before, after = old.get("conversations", {}), new.get("conversations", {})
    for conv in sorted(set(before) | set(after)):
        a, b = before.get(conv), after.get(conv)
        if a != b:
            moved.append({"conversation_id": conv, "agent_id": (b or a)[0],
                          "old_score": a[1] if a else None, "new_score": b[1] if b else None,
                          "old_fatal": a[2] if a else None, "new_fatal": b[2] if b else None})
    agents = []
    means_before, means_after = old.get("agents", {}), new.get("agents", {})
    for agent in sorted(set(means_before) | set(means_after)):
        if means_before.get(agent) != means_after.get(agent):
            agents.append({"agent_id": agent, "old_mean_score": means_before.get(agent),
                           "new_mean_score": means_after.get(agent)})
    return {"conversations": moved, "agents": agents} if moved or agents else {}


class ReportVersions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def latest(self, kind: str, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(report_versions).where(
                report_versions.c.kind == kind, report_versions.c.name == name).order_by(
                report_versions.c.version.desc()).limit(1)).mappings().first()
        return _public(row) if row else None

    def get(self, kind: str, name: str, version: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(report_versions).where(
                report_versions.c.kind == kind, report_versions.c.name == name,
                report_versions.c.version == version)).mappings().first()
        return _public(row) if row else None

    def versions(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Every version of a report, oldest first, without files and snapshot."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(report_versions.c.kind, report_versions.c.name, report_versions.c.version,
                                       report_versions.c.first_day, report_versions.c.last_day,
                                       report_versions.c.issued_at, report_versions.c.reason,
                                       report_versions.c.changes).where(
                report_versions.c.kind == kind, report_versions.c.name == name).order_by(
                report_versions.c.version)).mappings().all()
        return [dict(r) | {"changes": json.loads(r["changes"])} for r in rows]

    def next_version(self, kind: str, name: str, snapshot: Mapping[str, Any]) -> tuple[int, dict[str, Any], bool]:
        """(version, changes, new): the version the figures in ``snapshot`` make — the latest when nothing moved
        (re-running a period gives the same version and the same files), else the next one."""
        latest = self.latest(kind, name)
        if latest is None:
            return 1, {}, True
        changes = changes_between(latest["snapshot"], snapshot)
        if not changes:
            return int(latest["version"]), latest["changes"], False
        return int(latest["version"]) + 1, changes, True

    def record(self, kind: str, name: str, first_day: str, last_day: str, version: int, *, reason: str,
               snapshot: Mapping[str, Any], changes: Mapping[str, Any], files: Mapping[str, str]) -> None:
        """Store an issued version (a version already stored is left as it was: the first issue is the record)."""
        with self.engine.begin() as conn:
            known = conn.execute(select(report_versions.c.version).where(
                report_versions.c.kind == kind, report_versions.c.name == name,
                report_versions.c.version == version)).first()
            if known is None:
                conn.execute(report_versions.insert().values(
                    kind=kind, name=name, version=version, first_day=first_day, last_day=last_day,
                    issued_at=now_iso(), reason=reason,
                    snapshot=json.dumps(snapshot, ensure_ascii=False, sort_keys=True),
                    changes=json.dumps(changes, ensure_ascii=False, sort_keys=True),
                    files=json.dumps(dict(files), ensure_ascii=False, sort_keys=True)))

    # -- results that changed after a report -------------------------------------------------------
    def mark_stale(self, days: Iterable[str], reason: str) -> list[str]:
        """Days whose results changed: kept for the next rollup when a report covering them was issued."""
        wanted = sorted({d for d in days if d})
        if not wanted:
            return []
        marked = []
        with self.engine.begin() as conn:
            reported = set(conn.execute(select(report_versions.c.first_day, report_versions.c.last_day)).all())
            for day in wanted:
                if not any(first <= day <= last for first, last in reported):
                    continue  # nothing published yet: the first report will have the new result
                if conn.execute(select(report_stale.c.day).where(report_stale.c.day == day)).first() is None:
                    conn.execute(report_stale.insert().values(day=day, since=now_iso(), reason=reason))
                marked.append(day)
        return marked

    def stale_days(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(report_stale).order_by(report_stale.c.day)).mappings()]

    def clear_stale(self, days: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            for day in days:
                conn.execute(report_stale.delete().where(report_stale.c.day == day))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(report_versions)).scalar_one())


def _public(row: Any) -> dict[str, Any]:
    data = dict(row)
    for key in ("snapshot", "changes", "files"):
        data[key] = json.loads(data[key])
    return data
