"""Search over the stored transcript, for the floor: a conversation by its id, or by an order number or a
keyword anyone typed in it.

A standalone query class over the SQLAlchemy engine (it owns no table: it reads ``messages`` and
``conversations``). One result per conversation, newest match first, with the newest matching message as
its excerpt; paged by a cursor ``"<last match ms>:<conversation id>"`` (a conversation that gets a newer
match while paging may show again on a later page or be passed over: a search is a look, not a ledger).

The text is matched as typed: ``%``, ``_`` and ``\\`` are escaped, so they match themselves; case is
ignored (order numbers with letters). The query scans ``messages.text`` (``LIKE '%…%'``); a trigram index is
the next step if the transcript grows beyond what a scan answers quickly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, case, func, or_, select

from zhijian.store.schema import conversations, messages

EXCERPT_CHARS = 40  # either side of the match
_CURSOR = re.compile(r"^(\d{1,19}):(.+)$", re.DOTALL)


class BadCursor(ValueError):
    """A ``before`` cursor this search did not hand out."""


@dataclass(frozen=True)
class Cursor:
    ts_ms: int
    conversation_id: str

    def __str__(self) -> str:
        return f"{self.ts_ms}:{self.conversation_id}"

    @classmethod
    def parse(cls, value: str) -> Cursor:
        match = _CURSOR.match(value)
        if match is None:
            raise BadCursor("before must be '<epoch ms>:<conversation id>' as returned in next_before")
        return cls(int(match.group(1)), match.group(2))


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards and the escape character itself matched literally (escape ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def excerpt(text: str, needle: str) -> tuple[str, int, int]:
    """A window of ``text`` around the first case-insensitive occurrence of ``needle``, and the match's
    [start, end) inside that window ((0, 0) when the text does not contain it)."""
    at = text.casefold().find(needle.casefold())
    if at < 0 or len(text.casefold()) != len(text):  # casefold changed lengths (rare): no offsets to trust
        at = text.find(needle)
    if at < 0:
        return text[: 2 * EXCERPT_CHARS], 0, 0
    start = max(0, at - EXCERPT_CHARS)
    end = min(len(text), at + len(needle) + EXCERPT_CHARS)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return f"{prefix}{text[start:end]}{suffix}", len(prefix) + at - start, len(prefix) + at - start + len(needle)


class TranscriptSearch:
    """``search(q, ...)``: conversations whose id or transcript contains ``q``, inside a scope."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def search(self, q: str, *, limit: int = 20, before: Cursor | None = None,
               scope: Mapping[str, str | None] | None = None) -> tuple[list[dict[str, Any]], Cursor | None]:
        """Up to ``limit`` conversations, newest match first, and the cursor of the next page (None: no more).
        ``scope``: the caller's, as ``Principal.scope`` ({} for everything, else ``team_id`` or ``agent_id``,
        matched exactly against the conversation's owner; a key held as None matches only unowned ones)."""
        needle = q.strip()
        if not needle:
            return [], None
        pattern = like_pattern(needle)
        text_hit = messages.c.text.ilike(pattern, escape="\\")
        id_hit = messages.c.conversation_id.ilike(pattern, escape="\\")
        last = func.max(messages.c.ts_ms).label("last_ms")
        hits = func.sum(case((text_hit, 1), else_=0)).label("hits")
        query = (select(messages.c.conversation_id, last, hits)
                 .select_from(messages.outerjoin(conversations,
                                                 conversations.c.conversation_id == messages.c.conversation_id))
                 .where(or_(text_hit, id_hit)))
        for key, value in (scope or {}).items():
            if key not in ("team_id", "agent_id"):
                raise ValueError(f"unknown scope key {key!r}")
            query = query.where(conversations.c[key].is_(None) if value is None else conversations.c[key] == value)
        query = query.group_by(messages.c.conversation_id)
        if before is not None:
            query = query.having(or_(last < before.ts_ms,
                                     and_(last == before.ts_ms, messages.c.conversation_id < before.conversation_id)))
        query = query.order_by(last.desc(), messages.c.conversation_id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            groups = conn.execute(query).all()
            more = len(groups) > limit
            groups = groups[:limit]
            ids = [str(g.conversation_id) for g in groups]
            if not ids:
                return [], None
            info = {str(r.conversation_id): r for r in conn.execute(
                select(conversations.c.conversation_id, conversations.c.shop_id, conversations.c.team_id,
                       conversations.c.agent_id, conversations.c.status, conversations.c.opened_ms)
                .where(conversations.c.conversation_id.in_(ids))).all()}
            newest: dict[str, Any] = {}
            for row in conn.execute(
                    select(messages.c.conversation_id, messages.c.message_id, messages.c.ts_ms, messages.c.sender,
                           messages.c.agent_id, messages.c.text)
                    .where(messages.c.conversation_id.in_(ids), text_hit)
                    .order_by(messages.c.conversation_id, messages.c.ts_ms.desc(), messages.c.seq.desc())).all():
                newest.setdefault(str(row.conversation_id), row)
        results = []
        for group in groups:
            cid = str(group.conversation_id)
            conv = info.get(cid)
            found = newest.get(cid)
            body: dict[str, Any] = {
                "conversation_id": cid, "last_match_ms": int(group.last_ms), "matches": int(group.hits or 0),
                "shop_id": conv.shop_id if conv else None, "team_id": conv.team_id if conv else None,
                "agent_id": conv.agent_id if conv else None, "status": conv.status if conv else None,
                "opened_ms": conv.opened_ms if conv else None,
                "message_id": None, "ts_ms": None, "sender": None, "excerpt": None, "match": None,
            }
            if found is not None:
                text, start, end = excerpt(str(found.text), needle)
                body.update(message_id=str(found.message_id), ts_ms=int(found.ts_ms), sender=str(found.sender),
                            excerpt=text, match=[start, end])
            results.append(body)
        tail = groups[-1]
        return results, Cursor(int(tail.last_ms), str(tail.conversation_id)) if more else None
