"""The 24-hour rule's second half: an offline question still unanswered when its 24 hours are over is 回复中断.

A conversation that closed on a question left while the shop was offline is scored *pending* (not 回复中断) until
``offline_reply_s`` after the question. Nothing arrives when that time passes, so a job must look: the nightly
``zhijian rollup`` calls :func:`expire_offline_pending` before it reports. Each pending score whose deadline has
passed gets ``offline_expired_ms`` (the deadline) in its stored summary and is rescored — now with 回复中断 and the
silent agent's findings, as appealable rows — and its day is marked for a re-issued report when one was published.
Idempotent: an expired summary is no longer pending, so a second run changes nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from zhijian.scoring import expire_offline, findings_of, offline_deadline_ms
from zhijian.store.audit import Audit
from zhijian.store.conversations import RubricFor
from zhijian.store.schema import findings, scores

if TYPE_CHECKING:
    from zhijian.store.database import Database


def expire_offline_pending(store: Database, rubric_for: RubricFor, now_ms: int) -> list[dict[str, Any]]:
    """Rescore every pending offline question whose 24 hours are over at ``now_ms``; returns what changed
    (conversation, day, old score, new score)."""
    with store.engine.connect() as conn:
        candidates = conn.execute(select(scores.c.conversation_id, scores.c.summary).where(
            scores.c.breakdown.like('%"offline_pending": true%'))).all()
    changed = []
    for conversation_id, payload in candidates:
        summary = json.loads(payload)
        rubric = rubric_for(summary["shop_id"])
        deadline = offline_deadline_ms(summary, rubric)
        if deadline is None or deadline > now_ms:
            continue
        expired = expire_offline(summary, deadline)
        with store.engine.begin() as conn:
            old = conn.execute(select(scores.c.score, scores.c.day).where(
                scores.c.conversation_id == conversation_id)).mappings().one()
            conn.execute(update(scores).where(scores.c.conversation_id == conversation_id).values(
                summary=json.dumps(expired, ensure_ascii=False, sort_keys=True)))
            rows = [{"finding_id": f["finding_id"], "conversation_id": conversation_id,
                     "agent_id": f.get("agent_id") or expired.get("agent_id"), "team_id": expired.get("team_id"),
                     "day": old["day"], "label": f["label"], "message_id": f.get("message_id"), "start": f["start"],
                     "end": f["end"], "ts_ms": f.get("ts_ms"), "matched": f.get("matched") or "", "status": "active"}
                    for f in findings_of(expired, rubric)]
            for row in rows:
                if conn.execute(select(findings.c.finding_id).where(
                        findings.c.finding_id == row["finding_id"])).first() is None:
                    conn.execute(findings.insert().values(row))
            new = store.scores.rescore(conn, conversation_id, rubric_for)
            Audit.record(conn, "system", "offline.expired", conversation_id,
                         {"deadline_ms": deadline, "score": new["score"] if new else None, "old_score": old["score"]})
        changed.append({"conversation_id": conversation_id, "day": old["day"], "old_score": old["score"],
                        "new_score": new["score"] if new else None})
    if changed:
        store.report_versions.mark_stale((c["day"] for c in changed), "offline question unanswered after "
                                                "its 24 hours (回复中断)")
    return changed
