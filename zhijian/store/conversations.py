"""Conversations (the latest snapshot of each, versioned) and their transcripts (every message, by id)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, select

from detectors.rubric import Rubric
from zhijian.scoring import AGENT_LABELS, finding_id
from zhijian.store.engine import newest_by, upsert
from zhijian.store.schema import conversations, findings, messages

RubricFor = Callable[[str], Rubric]  # shop_id → that shop's rubric


class Conversations:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, snapshots: Iterable[dict[str, Any]]) -> int:
        """Upsert conversation snapshots; a stored row is replaced only by a higher version."""
        newest = newest_by(snapshots, "conversation_id", "version")
        rows = [
            {
                "conversation_id": c["conversation_id"], "shop_id": c["shop_id"], "team_id": c.get("team_id"),
                "agent_id": c.get("agent_id"), "status": c["status"], "opened_ms": c.get("opened_ms"),
                "closed_ms": c.get("closed_ms"), "waiting_since_ms": c.get("waiting_since_ms"),
                "version": int(c["version"]), "final": bool(c.get("final")),
                "payload": json.dumps(c, ensure_ascii=False, separators=(",", ":")),
            }
            for c in newest.values()
        ]
        if not rows:
            return 0
        changing = ("team_id", "agent_id", "status", "closed_ms", "waiting_since_ms", "version", "final", "payload")
        statement = upsert(self.engine.dialect.name, conversations, keys=["conversation_id"], update=changing,
                           where=lambda new: conversations.c.version < new.version)
        with self.engine.begin() as conn:
            return len(conn.execute(statement.returning(conversations.c.conversation_id), rows).all())

    def reconcile_open(self, owned: Callable[[str], bool], held: Callable[[str], bool], *, reason: str,
                       at_iso: str) -> int:
        """Conversations SQL still shows as open or waiting that the worker owning them no longer holds (lost with
        a broker that kept nothing, or closed while a snapshot was lost): marked closed with ``reason``, so the
        waiting board shows no ghosts. ``owned``: the conversation's partition is active on the calling worker;
        ``held``: that worker has its state. Returns how many rows were closed."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(conversations.c.conversation_id, conversations.c.payload).where(
                conversations.c.status.in_(("open", "waiting")))).all()
        stale = [(cid, payload) for cid, payload in rows if owned(cid) and not held(cid)]
        closed = 0
        with self.engine.begin() as conn:
            for cid, payload in stale:
                body = json.loads(payload)
                body.update(status="closed", close_reason=reason, waiting_since_ms=None, waiting_since=None,
                            reconciled_at=at_iso)
                closed += conn.execute(conversations.update().where(
                    conversations.c.conversation_id == cid, conversations.c.status.in_(("open", "waiting"))).values(
                    status="closed", waiting_since_ms=None, version=conversations.c.version + 1,
                    payload=json.dumps(body, ensure_ascii=False, separators=(",", ":")))).rowcount
        return closed

    def since(self, opened_ms: int, owned: Callable[[str], bool]) -> list[dict[str, Any]]:
        """Stored snapshots of conversations opened at or after ``opened_ms`` (or still open) that ``owned`` keeps,
        oldest first: what a worker rebuilds its state from after a broker lost its changelogs."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(conversations.c.conversation_id, conversations.c.version,
                                       conversations.c.payload).where(
                (conversations.c.opened_ms >= opened_ms) | conversations.c.status.in_(("open", "waiting")))
                .order_by(conversations.c.opened_ms, conversations.c.conversation_id)).all()
        return [json.loads(payload) | {"version": int(version)} for cid, version, payload in rows if owned(cid)]

    def find(self, *, agent_id: str | None = None, team_id: str | None = None,
             status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Waiting ones longest-waiting first, others newest first; without transcripts."""
        query = select(conversations.c.payload)
        if agent_id is not None:
            query = query.where(conversations.c.agent_id == agent_id)
        if team_id is not None:
            query = query.where(conversations.c.team_id == team_id)
        if status is not None:
            query = query.where(conversations.c.status == status)
        if status == "waiting":
            query = query.order_by(conversations.c.waiting_since_ms.asc(), conversations.c.conversation_id)
        else:
            query = query.order_by(conversations.c.opened_ms.desc(), conversations.c.conversation_id)
        with self.engine.connect() as conn:
            payloads = conn.execute(query.limit(limit)).scalars().all()
        out = []
        for payload in payloads:
            body = json.loads(payload)
            body.pop("transcript", None)
            out.append(body)
        return out

    def get(self, conversation_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            payload = conn.execute(select(conversations.c.payload).where(
                conversations.c.conversation_id == conversation_id)).scalar()
        return json.loads(payload) if payload else None


class Messages:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save_transcript(self, lines: Iterable[Any], rubric_for: RubricFor) -> int:
        """Messages of live conversations with their findings' spans (``stream.engine.records.TranscriptLine``).
        Idempotent: a message is stored once per (conversation, message_id), a finding once per finding_id.
        Findings on agent messages become appealable rows; a model finding under its alert threshold is kept
        for the QA review queue (status ``review``) and does not count."""
        messages_rows: dict[tuple[str, str], dict[str, Any]] = {}
        finding_rows: dict[str, dict[str, Any]] = {}
        for line in lines:
            messages_rows[(line.conversation_id, line.message_id)] = {
                "conversation_id": line.conversation_id, "message_id": line.message_id, "ts_ms": line.ts_ms,
                "seq": line.seq, "sender": line.sender, "agent_id": line.agent_id, "text": line.text,
                "late": line.late, "ruleset": line.ruleset,
                "marks": json.dumps([[m.label, m.start, m.end] for m in line.marks if m.counted], ensure_ascii=False)}
            if line.kind != "a":
                continue
            rubric = rubric_for(line.shop_id)
            for mark in line.marks:
                if mark.label not in AGENT_LABELS:
                    continue
                fid = finding_id(line.conversation_id, mark.label, line.message_id, mark.start, mark.end)
                finding_rows[fid] = {
                    "finding_id": fid, "conversation_id": line.conversation_id, "agent_id": line.agent_id,
                    "team_id": line.team_id, "day": rubric.day(line.ts_ms), "label": mark.label,
                    "message_id": line.message_id, "start": mark.start, "end": mark.end, "ts_ms": line.ts_ms,
                    "matched": line.text[mark.start:mark.end], "status": "active" if mark.counted else "review"}
        if not messages_rows:
            return 0
        dialect = self.engine.dialect.name
        with self.engine.begin() as conn:
            conn.execute(upsert(dialect, messages, keys=["conversation_id", "message_id"]),
                         list(messages_rows.values()))
            if finding_rows:
                conn.execute(upsert(dialect, findings, keys=["finding_id"]), list(finding_rows.values()))
        return len(messages_rows)

    def transcripts(self, conversation_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The stored messages of many conversations, each in the order the worker stored them (``seq``)."""
        wanted = list(conversation_ids)
        out: dict[str, list[dict[str, Any]]] = {cid: [] for cid in wanted}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(select(messages).where(messages.c.conversation_id.in_(wanted[start:start + 500]))
                                    .order_by(messages.c.conversation_id, messages.c.seq)).mappings().all()
                for row in rows:
                    out[row["conversation_id"]].append(dict(row))
        return out

    def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The stored messages of a conversation in event-time order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(messages).where(messages.c.conversation_id == conversation_id).order_by(
                messages.c.ts_ms, messages.c.seq, messages.c.message_id)).mappings().all()
        return [dict(r) | {"marks": json.loads(r["marks"])} for r in rows]
