"""Scores, findings, appeals, bonuses, review samples and the audit trail, in SQL.

Everything is keyed so that writing the same thing twice changes nothing: findings by
``finding_id``, scores by ``conversation_id`` (replaced only by a newer summary version, or
by a rescore after an appeal), samples by (day, conversation). Scores are recomputed from
the stored closing summary, so a rescore never needs the broker.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String, Table, Text, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from detectors.rubric import Rubric
from zhijian.scoring import AGENT_LABELS, active_labels, finding_id, findings_of, score_summary
from zhijian.store.base import Store, messages, metadata

scores = Table(
    "conversation_scores", metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("shop_id", String(128), nullable=False),
    Column("agent_id", String(128)),
    Column("team_id", String(128)),
    Column("day", String(10), nullable=False),
    Column("shift", String(32)),
    Column("opened_ms", BigInteger), Column("closed_ms", BigInteger),
    Column("duration_s", Float),
    Column("score", Float, nullable=False), Column("max_score", Integer, nullable=False),
    Column("fatal", Boolean, nullable=False),
    Column("first_response_s", Float), Column("avg_response_s", Float),
    Column("turns", Integer, nullable=False), Column("answered_turns", Integer, nullable=False),
    Column("politeness_rate", Float),
    Column("agent_messages", Integer, nullable=False), Column("customer_messages", Integer, nullable=False),
    Column("labels", Text, nullable=False),  # active finding counts per label
    Column("breakdown", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
)
Index("ix_scores_day_agent", scores.c.day, scores.c.agent_id)
Index("ix_scores_day_team", scores.c.day, scores.c.team_id)

findings = Table(
    "findings", metadata,
    Column("finding_id", String(32), primary_key=True),
    Column("conversation_id", String(128), nullable=False),
    Column("agent_id", String(128)), Column("team_id", String(128)),
    Column("day", String(10), nullable=False),
    Column("label", String(32), nullable=False),
    Column("message_id", String(128)),
    Column("start", Integer, nullable=False), Column("end", Integer, nullable=False),
    Column("ts_ms", BigInteger),
    Column("matched", Text, nullable=False),
    # active → appealed → dismissed (appeal accepted: out of the score) | upheld (appeal rejected)
    Column("status", String(16), nullable=False),
)
Index("ix_findings_agent_day", findings.c.agent_id, findings.c.day)
Index("ix_findings_conversation", findings.c.conversation_id)

appeals = Table(
    "appeals", metadata,
    Column("appeal_id", String(36), primary_key=True),
    Column("finding_id", String(32), nullable=False),
    Column("conversation_id", String(128), nullable=False),
    Column("agent_id", String(128)),
    Column("day", String(10), nullable=False),  # the finding's day: appeals count in its rollup
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),  # open | accepted | rejected
    Column("opened_at", String(40), nullable=False),
    Column("decided_at", String(40)),
    Column("reviewer", String(128)),
    Column("note", Text),
)
Index("ix_appeals_finding", appeals.c.finding_id)

bonuses = Table(
    "bonuses", metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("points", Integer, nullable=False),
    Column("note", Text, nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("at", String(40), nullable=False),
)

audit = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("detail", Text, nullable=False),
)

samples = Table(
    "review_samples", metadata,  # 抽检: conversations picked for after-the-fact review, per day
    Column("day", String(10), primary_key=True),
    Column("conversation_id", String(128), primary_key=True),
    Column("agent_id", String(128)),
    Column("reasons", Text, nullable=False),
)

RubricFor = Callable[[str], Rubric]  # shop_id → that shop's rubric


class AppealError(ValueError):
    """The appeal cannot be made or decided; the message says why (HTTP 409/404)."""


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class QualityStore(Store):
    def _insert(self) -> Any:
        return postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    # -- scoring -----------------------------------------------------------------------------
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
                written += self._write_score(conn, summary, rubric, only_if_newer=True)
        return written

    def _save_findings(self, conn: Connection, summary: dict[str, Any], rubric: Rubric) -> None:
        """The conversation-level findings of a closing summary (message findings come with the transcript)."""
        rows = [{"finding_id": f["finding_id"], "conversation_id": summary["conversation_id"],
                 "agent_id": f.get("agent_id") or summary.get("agent_id"), "team_id": summary.get("team_id"),
                 "day": rubric.day(f.get("ts_ms") or summary["closed_ms"]), "label": f["label"],
                 "message_id": f.get("message_id"), "start": f["start"], "end": f["end"], "ts_ms": f.get("ts_ms"),
                 "matched": f.get("matched") or "", "status": "active"} for f in findings_of(summary, rubric)]
        if rows:  # a finding's status (appealed, dismissed) survives a replay of the summary
            conn.execute(self._insert()(findings).on_conflict_do_nothing(index_elements=["finding_id"]), rows)

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
        with self.engine.begin() as conn:
            conn.execute(self._insert()(messages).on_conflict_do_nothing(
                index_elements=["conversation_id", "message_id"]), list(messages_rows.values()))
            if finding_rows:
                conn.execute(self._insert()(findings).on_conflict_do_nothing(index_elements=["finding_id"]),
                             list(finding_rows.values()))
        return len(messages_rows)

    def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The stored messages of a conversation in event-time order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(messages).where(messages.c.conversation_id == conversation_id).order_by(
                messages.c.ts_ms, messages.c.seq, messages.c.message_id)).mappings().all()
        return [dict(r) | {"marks": json.loads(r["marks"])} for r in rows]

    def _write_score(self, conn: Connection, summary: dict[str, Any], rubric: Rubric, *, only_if_newer: bool) -> int:
        conv = summary["conversation_id"]
        dismissed = Counter(conn.execute(select(findings.c.label).where(
            findings.c.conversation_id == conv, findings.c.status.in_(("dismissed", "rejected")))).scalars())
        bonus = conn.execute(select(bonuses.c.points).where(bonuses.c.conversation_id == conv)).scalar() or 0
        extra, human, restored = self._review_inputs(conn, conv)
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
        base = self._insert()(scores).values(row)
        changing = {name: base.excluded[name] for name in row if name != "conversation_id"}
        statement = base.on_conflict_do_update(
            index_elements=["conversation_id"], set_=changing,
            where=(scores.c.version < base.excluded.version) if only_if_newer else None,
        ).returning(scores.c.conversation_id)
        return len(conn.execute(statement).all())

    def _review_inputs(self, conn: Connection, conversation_id: str) -> tuple[
            Counter[str], dict[str, float], frozenset[str]]:
        """Findings a reviewer added, the human items' points, and items restored by an accepted appeal
        (``zhijian.store.review`` fills them in)."""
        return Counter(), {}, frozenset()

    def rescore(self, conn: Connection, conversation_id: str, rubric_for: RubricFor) -> dict[str, Any] | None:
        payload = conn.execute(select(scores.c.summary).where(scores.c.conversation_id == conversation_id)).scalar()
        if payload is None:
            return None
        summary = json.loads(payload)
        self._write_score(conn, summary, rubric_for(summary["shop_id"]), only_if_newer=False)
        return self._score_row(conn, conversation_id)

    def _score_row(self, conn: Connection, conversation_id: str) -> dict[str, Any] | None:
        row = conn.execute(select(scores).where(scores.c.conversation_id == conversation_id)).mappings().first()
        return _public_score(row) if row else None

    def conversation_score(self, conversation_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return self._score_row(conn, conversation_id)

    def scored_rows(self, day: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(scores).where(scores.c.day == day).order_by(
                scores.c.agent_id, scores.c.opened_ms, scores.c.conversation_id)).mappings().all()
        return [_public_score(r) for r in rows]

    def rows_between(self, first_day: str, last_day: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(scores).where(scores.c.day >= first_day, scores.c.day <= last_day)).mappings()
            return [_public_score(r) for r in rows]

    def findings_for(self, *, agent_id: str | None = None, day: str | None = None, conversation_id: str | None = None,
                     limit: int = 200) -> list[dict[str, Any]]:
        query = select(findings).order_by(findings.c.ts_ms.desc(), findings.c.finding_id).limit(limit)
        for column, value in ((findings.c.agent_id, agent_id), (findings.c.day, day),
                              (findings.c.conversation_id, conversation_id)):
            if value is not None:
                query = query.where(column == value)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def findings_for_id(self, finding: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(findings).where(findings.c.finding_id == finding)).mappings().first()
        return dict(row) if row else None

    # -- appeals and bonuses -------------------------------------------------------------------
    def open_appeal(self, finding: str, *, agent_id: str, reason: str, evidence: str = "",
                    rubric_for: RubricFor | None = None, now: datetime.datetime | None = None) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = conn.execute(select(findings).where(findings.c.finding_id == finding)).mappings().first()
            if row is None:
                raise AppealError(f"no finding {finding!r}")
            if row["status"] not in ("active", "confirmed"):
                raise AppealError(f"finding {finding} is {row['status']}: it cannot be appealed again")
            moment = now or datetime.datetime.now(datetime.UTC)
            appeal = {"appeal_id": str(uuid.uuid4()), "finding_id": finding, "conversation_id": row["conversation_id"],
                      "agent_id": agent_id, "day": row["day"], "reason": reason, "status": "open",
                      "opened_at": moment.isoformat(timespec="milliseconds")}
            terms = self._appeal_terms(conn, dict(row), appeal, evidence, rubric_for, moment)
            conn.execute(appeals.insert().values(appeal))
            conn.execute(update(findings).where(findings.c.finding_id == finding).values(status="appealed"))
            self._audit(conn, agent_id, "appeal.open", appeal["appeal_id"],
                        {"finding_id": finding, "reason": reason, **({"evidence": evidence} if evidence else {})})
        return appeal | terms

    def _appeal_terms(self, conn: Connection, finding: dict[str, Any], appeal: dict[str, Any], evidence: str,
                      rubric_for: RubricFor | None, now: datetime.datetime) -> dict[str, Any]:
        """The appeal's window check, deadline and evidence (``zhijian.store.review``); raises AppealError."""
        return {}

    def decide_appeal(self, appeal_id: str, *, accept: bool, reviewer: str, note: str,
                      rubric_for: RubricFor) -> dict[str, Any]:
        with self.engine.begin() as conn:
            appeal = conn.execute(select(appeals).where(appeals.c.appeal_id == appeal_id)).mappings().first()
            if appeal is None:
                raise AppealError(f"no appeal {appeal_id!r}")
            if appeal["status"] != "open":
                raise AppealError(f"appeal {appeal_id} is already {appeal['status']}")
            status = "accepted" if accept else "rejected"
            conn.execute(update(appeals).where(appeals.c.appeal_id == appeal_id).values(
                status=status, decided_at=now_iso(), reviewer=reviewer, note=note))
            conn.execute(update(findings).where(findings.c.finding_id == appeal["finding_id"]).values(
                status="dismissed" if accept else "upheld"))
            score = self.rescore(conn, appeal["conversation_id"], rubric_for)
            self._audit(conn, reviewer, f"appeal.{status}", appeal_id,
                        {"finding_id": appeal["finding_id"], "note": note,
                         "score": score["score"] if score else None})
            decided = dict(conn.execute(select(appeals).where(appeals.c.appeal_id == appeal_id)).mappings().one())
        decided["score"] = score
        return decided

    def list_appeals(self, *, status: str | None = None, agent_id: str | None = None) -> list[dict[str, Any]]:
        query = select(appeals).order_by(appeals.c.opened_at.desc())
        if status is not None:
            query = query.where(appeals.c.status == status)
        if agent_id is not None:
            query = query.where(appeals.c.agent_id == agent_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def award_bonus(self, conversation_id: str, *, points: int, note: str, reviewer: str,
                    rubric_for: RubricFor) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            if conn.execute(select(scores.c.conversation_id).where(
                    scores.c.conversation_id == conversation_id)).first() is None:
                return None
            row = {"conversation_id": conversation_id, "points": points, "note": note, "reviewer": reviewer,
                   "at": now_iso()}
            base = self._insert()(bonuses).values(row)
            conn.execute(base.on_conflict_do_update(index_elements=["conversation_id"],
                                                    set_={k: base.excluded[k] for k in row if k != "conversation_id"}))
            score = self.rescore(conn, conversation_id, rubric_for)
            self._audit(conn, reviewer, "bonus.award", conversation_id, {"points": points, "note": note})
        return score

    def audit_trail(self, subject: str | None = None) -> list[dict[str, Any]]:
        query = select(audit).order_by(audit.c.id)
        if subject is not None:
            query = query.where(audit.c.subject == subject)
        with self.engine.connect() as conn:
            return [dict(r) | {"detail": json.loads(r["detail"])} for r in conn.execute(query).mappings()]

    def _audit(self, conn: Connection, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        conn.execute(audit.insert().values(at=now_iso(), actor=actor, action=action, subject=subject,
                                           detail=json.dumps(detail, ensure_ascii=False, sort_keys=True)))

    def appeals_between(self, first_day: str, last_day: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(appeals).where(
                appeals.c.day >= first_day, appeals.c.day <= last_day)).mappings()]

    def alert_times(self, start_ms: int, end_ms: int) -> list[tuple[str, int]]:
        """(rule, ts_ms) of every alert in [start_ms, end_ms)."""
        from zhijian.store.base import alerts

        with self.engine.connect() as conn:
            return [(r, int(t)) for r, t in conn.execute(select(alerts.c.rule, alerts.c.ts_ms).where(
                alerts.c.ts_ms >= start_ms, alerts.c.ts_ms < end_ms))]

    def waiting_alert_counts(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        from zhijian.store.base import alerts

        counts: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in range(0, len(conversation_ids), 500):
                ids = list(conversation_ids[chunk:chunk + 500])
                for (conv,) in conn.execute(select(alerts.c.conversation_id).where(
                        alerts.c.rule == "customer_waiting", alerts.c.conversation_id.in_(ids))):
                    counts[conv] = counts.get(conv, 0) + 1
        return counts


def save_samples(store: QualityStore, day: str, picked: list[dict[str, Any]]) -> None:
    """Replace the day's sample: re-running the rollup for a date gives the same rows."""
    with store.engine.begin() as conn:
        conn.execute(samples.delete().where(samples.c.day == day))
        if picked:
            conn.execute(samples.insert(), [{"day": day, "conversation_id": p["conversation_id"],
                                             "agent_id": p["agent_id"],
                                             "reasons": json.dumps(p["reasons"], ensure_ascii=False)}
                                            for p in picked])


def samples_for(store: QualityStore, day: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(samples).where(samples.c.day == day).order_by(
            samples.c.agent_id, samples.c.conversation_id)).mappings()
        return [dict(r) | {"reasons": json.loads(r["reasons"])} for r in rows]


def _public_score(row: Any) -> dict[str, Any]:
    data = {k: v for k, v in dict(row).items() if k != "summary"}
    data["labels"] = json.loads(data["labels"])
    data["breakdown"] = json.loads(data["breakdown"])
    return data
