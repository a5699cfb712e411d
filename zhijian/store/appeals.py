"""Appeals (申诉): filed against a finding inside its window, decided by QA before a deadline, escalated once
when late. The steps are ``zhijian.store.states``; this module reads the rows, asks, and writes the answer."""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from detectors import load_ruleset
from detectors.rubric import rubric_of
from zhijian.scoring import finding_id
from zhijian.store import states
from zhijian.store.audit import Audit, now_iso
from zhijian.store.conversations import RubricFor
from zhijian.store.errors import AppealError, ReviewError
from zhijian.store.quality import ITEM_PREFIX, Scores
from zhijian.store.schema import appeal_terms, appeals, findings, reports_published, reviews, scores

APPEALABLE_ITEMS = ("first_response", "avg_response", "reply_rate")  # 响应时效: appealable like a finding


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


class Appeals:
    def __init__(self, engine: Engine, scores: Scores) -> None:
        self.engine = engine
        self.scores = scores

    def open(self, finding: str, *, agent_id: str, reason: str, evidence: str = "",
             rubric_for: RubricFor | None = None, now: datetime.datetime | None = None) -> dict[str, Any]:
        moment = now or datetime.datetime.now(datetime.UTC)
        with self.engine.begin() as conn:
            row = conn.execute(select(findings).where(findings.c.finding_id == finding)).mappings().first()
            if row is None:
                raise AppealError(f"no finding {finding!r}", "not_found")
            window_h, decision_h = self._rubric_hours(conn, row["conversation_id"], rubric_for)
            notice = self._notice(conn, row["conversation_id"], row["day"])
            status = states.file_appeal(row["status"], finding_id=finding, now=moment, notice_at=notice,
                                        window_h=window_h)
            appeal = {"appeal_id": str(uuid.uuid4()), "finding_id": finding, "conversation_id": row["conversation_id"],
                      "agent_id": agent_id, "day": row["day"], "reason": reason, "status": "open",
                      "opened_at": _iso(moment)}
            terms = {"evidence": evidence, "notice_at": notice,
                     "window_ends": states.appeal_window_ends(notice, window_h),
                     "decide_by": _iso(moment + datetime.timedelta(hours=decision_h)), "escalated_at": None}
            conn.execute(appeal_terms.insert().values(appeal_id=appeal["appeal_id"], **terms))
            conn.execute(appeals.insert().values(appeal))
            conn.execute(update(findings).where(findings.c.finding_id == finding).values(status=status))
            Audit.record(conn, agent_id, "appeal.open", appeal["appeal_id"],
                         {"finding_id": finding, "reason": reason, **({"evidence": evidence} if evidence else {})})
        return appeal | terms

    @staticmethod
    def _rubric_hours(conn: Connection, conversation_id: str, rubric_for: RubricFor | None) -> tuple[float, float]:
        """The appeal window and the decision time of the conversation's shop (the default scorecard without)."""
        shop = conn.execute(select(scores.c.shop_id).where(scores.c.conversation_id == conversation_id)).scalar()
        rubric = rubric_for(str(shop)) if rubric_for is not None and shop is not None else rubric_of(
            load_ruleset().rubric)
        return rubric.appeal_window_h, rubric.appeal_decision_h

    @staticmethod
    def _notice(conn: Connection, conversation_id: str, day: str) -> str | None:
        """When the agent was told the result: the review's sign-off, else the day's report going out."""
        notice = conn.execute(select(reviews.c.signed_off_at).where(
            reviews.c.conversation_id == conversation_id, reviews.c.status == "signed_off")).scalar()
        if notice is None:
            notice = conn.execute(select(reports_published.c.at).where(reports_published.c.day == day)).scalar()
        return None if notice is None else str(notice)

    def decide(self, appeal_id: str, *, accept: bool, reviewer: str, note: str,
               rubric_for: RubricFor) -> dict[str, Any]:
        with self.engine.begin() as conn:
            appeal = conn.execute(select(appeals).where(appeals.c.appeal_id == appeal_id)).mappings().first()
            if appeal is None:
                raise AppealError(f"no appeal {appeal_id!r}", "not_found")
            status = states.appeal_transition(appeal["status"], "accept" if accept else "reject", appeal_id=appeal_id)
            finding_status = conn.execute(select(findings.c.status).where(
                findings.c.finding_id == appeal["finding_id"])).scalar_one()
            outcome = states.finding_transition(finding_status, "accept" if accept else "uphold",
                                                finding_id=appeal["finding_id"])
            conn.execute(update(appeals).where(appeals.c.appeal_id == appeal_id).values(
                status=status, decided_at=now_iso(), reviewer=reviewer, note=note))
            conn.execute(update(findings).where(findings.c.finding_id == appeal["finding_id"]).values(status=outcome))
            score = self.scores.rescore(conn, appeal["conversation_id"], rubric_for)
            Audit.record(conn, reviewer, f"appeal.{status}", appeal_id,
                         {"finding_id": appeal["finding_id"], "note": note,
                          "score": score["score"] if score else None})
            decided = dict(conn.execute(select(appeals).where(appeals.c.appeal_id == appeal_id)).mappings().one())
        decided["score"] = score
        return decided

    def find(self, *, status: str | None = None, agent_id: str | None = None) -> list[dict[str, Any]]:
        query = select(appeals).order_by(appeals.c.opened_at.desc())
        if status is not None:
            query = query.where(appeals.c.status == status)
        if agent_id is not None:
            query = query.where(appeals.c.agent_id == agent_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def between(self, first_day: str, last_day: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(appeals).where(
                appeals.c.day >= first_day, appeals.c.day <= last_day)).mappings()]

    def with_terms(self, *, status: str | None = None) -> list[dict[str, Any]]:
        query = select(appeals, appeal_terms.c.evidence, appeal_terms.c.notice_at, appeal_terms.c.window_ends,
                       appeal_terms.c.decide_by, appeal_terms.c.escalated_at).outerjoin(
            appeal_terms, appeal_terms.c.appeal_id == appeals.c.appeal_id).order_by(appeals.c.opened_at.desc())
        if status is not None:
            query = query.where(appeals.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r) | {"escalated": r["escalated_at"] is not None} for r in conn.execute(query).mappings()]

    def escalate_late(self, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
        """Open appeals past their decision deadline: flagged once, with an audit entry (actor ``system``)."""
        at = _iso(now or datetime.datetime.now(datetime.UTC))
        with self.engine.begin() as conn:
            candidates = conn.execute(select(
                appeals.c.appeal_id, appeals.c.conversation_id, appeals.c.status, appeal_terms.c.decide_by,
                appeal_terms.c.escalated_at).join(appeal_terms, appeal_terms.c.appeal_id == appeals.c.appeal_id).where(
                appeals.c.status == "open", appeal_terms.c.escalated_at.is_(None),
                appeal_terms.c.decide_by < at)).mappings().all()
            late = [r for r in candidates if states.due_for_escalation(
                r["status"], decide_by=r["decide_by"], escalated_at=r["escalated_at"], now=at)]
            for row in late:
                conn.execute(update(appeal_terms).where(appeal_terms.c.appeal_id == row["appeal_id"]).values(
                    escalated_at=at))
                Audit.record(conn, "system", "appeal.escalated", row["appeal_id"],
                             {"conversation_id": row["conversation_id"], "decide_by": row["decide_by"]})
        return [{"appeal_id": r["appeal_id"], "conversation_id": r["conversation_id"], "decide_by": r["decide_by"],
                 "escalated_at": at} for r in late]

    def mark_published(self, day: str, now: datetime.datetime | None = None) -> str:
        """The day's report is out: automatic results of that day are notified (the first time counts)."""
        at = _iso(now or datetime.datetime.now(datetime.UTC))
        with self.engine.begin() as conn:
            first = conn.execute(select(reports_published.c.at).where(reports_published.c.day == day)).scalar()
            if first is None:
                conn.execute(reports_published.insert().values(day=day, at=at))
                return at
            return str(first)

    def item_finding(self, conversation_id: str, item: str) -> str:
        """A response-time item as an appealable finding (``item.<item>``), made once per conversation; refused
        when the item lost no points."""
        if item not in APPEALABLE_ITEMS:
            raise ReviewError(f"{item!r} is not an appealable item ({', '.join(APPEALABLE_ITEMS)})", "invalid")
        fid = finding_id(conversation_id, ITEM_PREFIX + item)
        with self.engine.begin() as conn:
            score = conn.execute(select(scores).where(scores.c.conversation_id == conversation_id)).mappings().first()
            if score is None:
                raise ReviewError(f"conversation {conversation_id!r} is not scored (yet)", "not_found")
            if conn.execute(select(findings.c.finding_id).where(findings.c.finding_id == fid)).first() is None:
                lost = [s for s in json.loads(score["breakdown"])["breakdown"]
                        if item in s["items"] and s["items"][item] < _item_max(s, item)]
                if not lost:
                    raise ReviewError(f"{item} lost no points in {conversation_id}: nothing to appeal")
                conn.execute(findings.insert().values(
                    finding_id=fid, conversation_id=conversation_id, agent_id=score["agent_id"],
                    team_id=score["team_id"], day=score["day"], label=ITEM_PREFIX + item, message_id=None, start=0,
                    end=0, ts_ms=score["closed_ms"], matched="", status="confirmed"))
        return fid


def _item_max(section: dict[str, Any], item: str) -> float:
    """An item's maximum as scored (breakdowns written before ``item_max`` existed: the section's maximum)."""
    return float(section.get("item_max", {}).get(item, section["max"]))
