"""Findings, scores (with bonuses) and review samples.

Everything is keyed so that writing the same thing twice changes nothing: findings by
``finding_id``, scores by ``conversation_id`` (replaced only by a newer summary version, or
by a rescore after an appeal or a review step), samples by (day, conversation). Scores are
recomputed from the stored closing summary, so a rescore never needs the broker.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, select

from detectors.rubric import Rubric
from zhijian.scoring import active_labels, findings_of, score_summary
from zhijian.store.audit import Audit, now_iso
from zhijian.store.conversations import RubricFor
from zhijian.store.engine import upsert
from zhijian.store.schema import bonuses, findings, review_marks, reviews, samples, scores

ITEM_PREFIX = "item."  # response-time items appealed like a finding (``Appeals.item_finding``)


class Findings:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, *, agent_id: str | None = None, day: str | None = None, conversation_id: str | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
        query = select(findings).order_by(findings.c.ts_ms.desc(), findings.c.finding_id).limit(limit)
        for column, value in ((findings.c.agent_id, agent_id), (findings.c.day, day),
                              (findings.c.conversation_id, conversation_id)):
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def get(self, finding: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(findings).where(findings.c.finding_id == finding)).mappings().first()
        return dict(row) if row else None


class Scores:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save_scored(self, summaries: Iterable[dict[str, Any]], rubric_for: RubricFor) -> int:
        """Findings and the score of every final summary. Idempotent; returns scores written."""
        final = {s["conversation_id"]: s for s in summaries if s.get("final") and s.get("status") == "closed"}
        if not final:
            return 0
        written = 0
        with self.engine.begin() as conn:
            for summary in final.values():
                rubric = rubric_for(summary["shop_id"])
                self._save_findings(conn, summary, rubric)
                written += self._write(conn, summary, rubric, only_if_newer=True)
        return written

    def _save_findings(self, conn: Connection, summary: dict[str, Any], rubric: Rubric) -> None:
        """The conversation-level findings of a closing summary (message findings come with the transcript)."""
        rows = [{"finding_id": f["finding_id"], "conversation_id": summary["conversation_id"],
                 "agent_id": f.get("agent_id") or summary.get("agent_id"), "team_id": summary.get("team_id"),
                 "day": rubric.day(f.get("ts_ms") or summary["closed_ms"]), "label": f["label"],
                 "message_id": f.get("message_id"), "start": f["start"], "end": f["end"], "ts_ms": f.get("ts_ms"),
                 "matched": f.get("matched") or "", "status": "active"} for f in findings_of(summary, rubric)]
        if rows:  # a finding's status (appealed, dismissed) survives a replay of the summary
            conn.execute(upsert(conn.dialect.name, findings, keys=["finding_id"]), rows)

    def _write(self, conn: Connection, summary: dict[str, Any], rubric: Rubric, *, only_if_newer: bool) -> int:
        conv = summary["conversation_id"]
        dismissed = Counter(conn.execute(select(findings.c.label).where(
            findings.c.conversation_id == conv, findings.c.status.in_(("dismissed", "rejected")))).scalars())
        bonus = conn.execute(select(bonuses.c.points).where(bonuses.c.conversation_id == conv)).scalar() or 0
        extra, human, restored = _review_inputs(conn, conv)
        result = score_summary(summary, rubric, dismissed=dismissed, bonus=bonus, extra=extra, human=human,
                               restored=restored)
        counted = active_labels(summary, rubric=rubric) + Counter(extra)
        counted.subtract(dismissed)
        labels = dict(+counted)
        metrics, checks = summary.get("metrics") or {}, summary.get("checks") or {}
        opened, closed = summary.get("opened_ms"), summary.get("closed_ms")
        when = int(closed or opened or 0)
        row = {
            "conversation_id": conv, "shop_id": summary["shop_id"], "agent_id": summary.get("agent_id"),
            "team_id": summary.get("team_id"), "day": rubric.day(when),
            "shift": rubric.shift(int(opened or when)), "opened_ms": opened, "closed_ms": closed,
            "duration_s": (closed - opened) / 1000 if opened is not None and closed is not None else None,
            "score": result.score, "max_score": result.max_score, "fatal": result.fatal,
            "first_response_s": metrics.get("first_response_s"), "avg_response_s": metrics.get("avg_response_s"),
            "turns": metrics.get("turns", 0), "answered_turns": metrics.get("answered_turns", 0),
            "politeness_rate": checks.get("politeness_rate"),
            "agent_messages": (metrics.get("messages") or {}).get("agent", 0),
            "customer_messages": (metrics.get("messages") or {}).get("customer", 0),
            "labels": json.dumps(labels, ensure_ascii=False, sort_keys=True),
            "breakdown": json.dumps(result.as_dict(), ensure_ascii=False, sort_keys=True),
            "version": int(summary.get("version", 0)),
            "summary": json.dumps(summary, ensure_ascii=False, sort_keys=True),
        }
        statement = upsert(conn.dialect.name, scores, keys=["conversation_id"],
                           update=[name for name in row if name != "conversation_id"],
                           where=(lambda new: scores.c.version < new.version) if only_if_newer else None)
        return len(conn.execute(statement.values(row).returning(scores.c.conversation_id)).all())

    def rescore(self, conn: Connection, conversation_id: str, rubric_for: RubricFor) -> dict[str, Any] | None:
        """Score the conversation again from its stored summary (after an appeal, a bonus, a review step)."""
        payload = conn.execute(select(scores.c.summary).where(scores.c.conversation_id == conversation_id)).scalar()
        if payload is None:
            return None
        summary = json.loads(payload)
        self._write(conn, summary, rubric_for(summary["shop_id"]), only_if_newer=False)
        return self.row(conn, conversation_id)

    @staticmethod
    def row(conn: Connection, conversation_id: str) -> dict[str, Any] | None:
        row = conn.execute(select(scores).where(scores.c.conversation_id == conversation_id)).mappings().first()
        return _public_score(row) if row else None

    def get(self, conversation_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return self.row(conn, conversation_id)

    def of_day(self, day: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(scores).where(scores.c.day == day).order_by(
                scores.c.agent_id, scores.c.opened_ms, scores.c.conversation_id)).mappings().all()
        return [_public_score(r) for r in rows]

    def between(self, first_day: str, last_day: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(scores).where(scores.c.day >= first_day, scores.c.day <= last_day)).mappings()
            return [_public_score(r) for r in rows]

    def award_bonus(self, conversation_id: str, *, points: int, note: str, reviewer: str,
                    rubric_for: RubricFor) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            if conn.execute(select(scores.c.conversation_id).where(
                    scores.c.conversation_id == conversation_id)).first() is None:
                return None
            row = {"conversation_id": conversation_id, "points": points, "note": note, "reviewer": reviewer,
                   "at": now_iso()}
            conn.execute(upsert(conn.dialect.name, bonuses, keys=["conversation_id"],
                                update=[k for k in row if k != "conversation_id"]).values(row))
            score = self.rescore(conn, conversation_id, rubric_for)
            Audit.record(conn, reviewer, "bonus.award", conversation_id, {"points": points, "note": note})
        return score


def _review_inputs(conn: Connection, conversation_id: str) -> tuple[Counter[str], dict[str, float], frozenset[str]]:
    """Findings a reviewer added (or a held-back one confirmed), the human items' points, and response-time
    items restored by an accepted appeal."""
    restored = frozenset(label[len(ITEM_PREFIX):] for label in conn.execute(select(findings.c.label).where(
        findings.c.conversation_id == conversation_id, findings.c.status == "dismissed",
        findings.c.label.startswith(ITEM_PREFIX))).scalars())
    extra = Counter(conn.execute(
        select(findings.c.label).join(review_marks, review_marks.c.finding_id == findings.c.finding_id).where(
            review_marks.c.conversation_id == conversation_id, review_marks.c.origin.in_(("held", "manual")),
            findings.c.status != "review")).scalars())
    raw = conn.execute(select(reviews.c.human).where(reviews.c.conversation_id == conversation_id)).scalar()
    return extra, ({str(k): float(v) for k, v in json.loads(raw).items()} if raw else {}), restored


def _public_score(row: Any) -> dict[str, Any]:
    data = {k: v for k, v in dict(row).items() if k != "summary"}
    data["labels"] = json.loads(data["labels"])
    data["breakdown"] = json.loads(data["breakdown"])
    return data


class Samples:
    """抽检: the conversations picked for after-the-fact review, per day."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, day: str, picked: list[dict[str, Any]]) -> None:
        """Replace the day's sample: re-running the rollup for a date gives the same rows."""
        with self.engine.begin() as conn:
            conn.execute(samples.delete().where(samples.c.day == day))
            if picked:
                conn.execute(samples.insert(), [{"day": day, "conversation_id": p["conversation_id"],
                                                 "agent_id": p["agent_id"],
                                                 "reasons": json.dumps(p["reasons"], ensure_ascii=False)}
                                                for p in picked])

    def of_day(self, day: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(samples).where(samples.c.day == day).order_by(
                samples.c.agent_id, samples.c.conversation_id)).mappings()
            return [dict(r) | {"reasons": json.loads(r["reasons"])} for r in rows]
