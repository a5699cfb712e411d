"""人工质检: QA staff work through the day's sample — confirm or reject each automatic finding, add manual
findings from the scorecard's labels (fatal ones included), score the rubric's human items, and sign off
(结果确认). Every step is in the audit trail and rescores the conversation from its stored summary.

How a review changes the score, without touching the closing summary:

* a rejected finding gets status ``rejected`` and is taken out like a dismissed one;
* a manual finding (and a held-back model finding a reviewer confirms) is a row of ``findings`` marked in
  ``review_marks``: it counts as an extra finding of its label, until rejected or dismissed on appeal;
* the human items' points live in ``reviews.human``; an item without points is pending (0, listed).
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import Column, Index, String, Table, Text, select, update
from sqlalchemy.engine import Connection

from detectors import load_ruleset
from detectors.rubric import SCORED_LABELS, Rubric, rubric_of
from zhijian.scoring import finding_id
from zhijian.store.base import metadata
from zhijian.store.claims import ClaimStore
from zhijian.store.quality import AppealError, RubricFor, appeals, findings, now_iso, samples, scores

reviews = Table(
    "reviews", metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("day", String(10), nullable=False),
    Column("agent_id", String(128)),
    Column("status", String(16), nullable=False),  # open | signed_off
    Column("human", Text, nullable=False),  # human item → points
    Column("reviewer", String(128)),
    Column("signed_off_at", String(40)),
    Column("note", Text, nullable=False),
)
Index("ix_reviews_day", reviews.c.day)

review_marks = Table(
    "review_marks", metadata,  # what a reviewer did to one finding
    Column("finding_id", String(32), primary_key=True),
    Column("conversation_id", String(128), nullable=False),
    Column("origin", String(16), nullable=False),  # auto (was counted) | held (model, under threshold) | manual
    Column("decision", String(16), nullable=False),  # confirmed | rejected | added
    Column("note", Text, nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("at", String(40), nullable=False),
)
Index("ix_review_marks_conversation", review_marks.c.conversation_id)

appeal_terms = Table(
    "appeal_terms", metadata,  # the window and deadline an appeal was opened under, its evidence, its escalation
    Column("appeal_id", String(36), primary_key=True),
    Column("evidence", Text, nullable=False),
    Column("notice_at", String(40)),  # the result's notice (sign-off, or the day's report) the window ran from
    Column("window_ends", String(40)),
    Column("decide_by", String(40), nullable=False),
    Column("escalated_at", String(40)),
)

reports_published = Table(
    "reports_published", metadata,  # the first time a day's report went out: automatic results' notice
    Column("day", String(10), primary_key=True),
    Column("at", String(40), nullable=False),
)

UNDECIDED = ("active", "review")
APPEALABLE_ITEMS = ("first_response", "avg_response", "reply_rate")  # 响应时效: appealable like a finding
ITEM_PREFIX = "item."  # findings a reviewer must confirm or reject before signing off


class ReviewError(ValueError):
    """The review step cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def label_choices(rubric: Rubric) -> list[dict[str, Any]]:
    """The labels a reviewer may add to a conversation: every label the scorecard scores (a deduction or fatal)."""
    deductions: dict[str, tuple[str, int]] = {}
    for part in rubric.sections:
        for label, points in part.deductions.items():
            deductions.setdefault(label, (part.name, points))
    out = []
    for label in (*SCORED_LABELS, *rubric.manual_labels):
        section, points = deductions.get(label, (None, 0))
        fatal = label in rubric.fatal_labels
        if fatal or points:
            out.append({"label": label, "name": rubric.manual_labels.get(label), "fatal": fatal,
                        "section": section, "points": -points, "manual_only": label in rubric.manual_labels})
    return out


def human_items(rubric: Rubric, given: dict[str, float]) -> list[dict[str, Any]]:
    return [{"item": item, "section": s.name, "max": maximum, "points": given.get(item),
             "pending": given.get(item) is None} for s in rubric.sections for item, maximum in s.human_items.items()]


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


class ReviewStore(ClaimStore):
    def _review_inputs(self, conn: Connection, conversation_id: str) -> tuple[
            Counter[str], dict[str, float], frozenset[str]]:
        restored = frozenset(label[len(ITEM_PREFIX):] for label in conn.execute(select(findings.c.label).where(
            findings.c.conversation_id == conversation_id, findings.c.status == "dismissed",
            findings.c.label.startswith(ITEM_PREFIX))).scalars())
        extra = Counter(conn.execute(
            select(findings.c.label).join(review_marks, review_marks.c.finding_id == findings.c.finding_id).where(
                review_marks.c.conversation_id == conversation_id, review_marks.c.origin.in_(("held", "manual")),
                findings.c.status != "review")).scalars())
        raw = conn.execute(select(reviews.c.human).where(reviews.c.conversation_id == conversation_id)).scalar()
        return extra, ({str(k): float(v) for k, v in json.loads(raw).items()} if raw else {}), restored

    # -- appeals: window, deadline, evidence, escalation ------------------------------------------
    def mark_published(self, day: str, now: datetime.datetime | None = None) -> str:
        """The day's report is out: automatic results of that day are notified (the first time counts)."""
        at = _iso(now or datetime.datetime.now(datetime.UTC))
        with self.engine.begin() as conn:
            first = conn.execute(select(reports_published.c.at).where(reports_published.c.day == day)).scalar()
            if first is None:
                conn.execute(reports_published.insert().values(day=day, at=at))
                return at
            return str(first)

    def _appeal_terms(self, conn: Connection, finding: dict[str, Any], appeal: dict[str, Any], evidence: str,
                      rubric_for: RubricFor | None, now: datetime.datetime) -> dict[str, Any]:
        shop = conn.execute(select(scores.c.shop_id).where(
            scores.c.conversation_id == finding["conversation_id"])).scalar()
        rubric = rubric_for(str(shop)) if rubric_for is not None and shop is not None else rubric_of(
            load_ruleset().rubric)
        notice = conn.execute(select(reviews.c.signed_off_at).where(
            reviews.c.conversation_id == finding["conversation_id"], reviews.c.status == "signed_off")).scalar()
        if notice is None:
            notice = conn.execute(select(reports_published.c.at).where(
                reports_published.c.day == finding["day"])).scalar()
        window_ends = _plus_hours(notice, rubric.appeal_window_h) if notice else None
        if window_ends is not None and now > datetime.datetime.fromisoformat(window_ends):
            raise AppealError(f"the appeal window closed at {window_ends} ({rubric.appeal_window_h:g} h after the "
                              f"result's notice at {notice})")
        terms = {"evidence": evidence, "notice_at": notice, "window_ends": window_ends,
                 "decide_by": _iso(now + datetime.timedelta(hours=rubric.appeal_decision_h)), "escalated_at": None}
        conn.execute(appeal_terms.insert().values(appeal_id=appeal["appeal_id"], **terms))
        return terms

    def escalate_late_appeals(self, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
        """Open appeals past their decision deadline: flagged once, with an audit entry (actor ``system``)."""
        at = _iso(now or datetime.datetime.now(datetime.UTC))
        with self.engine.begin() as conn:
            late = conn.execute(select(appeals.c.appeal_id, appeals.c.conversation_id, appeal_terms.c.decide_by).join(
                appeal_terms, appeal_terms.c.appeal_id == appeals.c.appeal_id).where(
                appeals.c.status == "open", appeal_terms.c.escalated_at.is_(None),
                appeal_terms.c.decide_by < at)).mappings().all()
            for row in late:
                conn.execute(update(appeal_terms).where(appeal_terms.c.appeal_id == row["appeal_id"]).values(
                    escalated_at=at))
                self._audit(conn, "system", "appeal.escalated", row["appeal_id"],
                            {"conversation_id": row["conversation_id"], "decide_by": row["decide_by"]})
        return [dict(r) | {"escalated_at": at} for r in late]

    def appeals_with_terms(self, *, status: str | None = None) -> list[dict[str, Any]]:
        query = select(appeals, appeal_terms.c.evidence, appeal_terms.c.notice_at, appeal_terms.c.window_ends,
                       appeal_terms.c.decide_by, appeal_terms.c.escalated_at).outerjoin(
            appeal_terms, appeal_terms.c.appeal_id == appeals.c.appeal_id).order_by(appeals.c.opened_at.desc())
        if status is not None:
            query = query.where(appeals.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r) | {"escalated": r["escalated_at"] is not None} for r in conn.execute(query).mappings()]

    def item_finding(self, conversation_id: str, item: str) -> str:
        """A response-time item as an appealable finding (``item.<item>``), made once per conversation; refused
        when the item lost no points."""
        if item not in APPEALABLE_ITEMS:
            raise ReviewError(f"{item!r} is not an appealable item ({', '.join(APPEALABLE_ITEMS)})", 422)
        fid = finding_id(conversation_id, ITEM_PREFIX + item)
        with self.engine.begin() as conn:
            score = conn.execute(select(scores).where(scores.c.conversation_id == conversation_id)).mappings().first()
            if score is None:
                raise ReviewError(f"conversation {conversation_id!r} is not scored (yet)", 404)
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

    # -- reading --------------------------------------------------------------------------------
    def review_queue(self, day: str) -> list[dict[str, Any]]:
        """The day's sample, each with its score and how far its review has come."""
        with self.engine.connect() as conn:
            picked = conn.execute(select(samples).where(samples.c.day == day).order_by(
                samples.c.agent_id, samples.c.conversation_id)).mappings().all()
            ids = [p["conversation_id"] for p in picked]
            scored = {r["conversation_id"]: r for r in conn.execute(select(
                scores.c.conversation_id, scores.c.score, scores.c.fatal, scores.c.team_id, scores.c.breakdown).where(
                scores.c.conversation_id.in_(ids))).mappings()} if ids else {}
            reviewed = {r["conversation_id"]: r for r in conn.execute(select(reviews).where(
                reviews.c.conversation_id.in_(ids))).mappings()} if ids else {}
            open_findings = Counter(conn.execute(select(findings.c.conversation_id).where(
                findings.c.conversation_id.in_(ids), findings.c.status.in_(UNDECIDED))).scalars()) if ids else Counter()
        out = []
        for pick in picked:
            conv = pick["conversation_id"]
            score, review = scored.get(conv), reviewed.get(conv)
            breakdown = json.loads(score["breakdown"]) if score else {}
            out.append({"conversation_id": conv, "agent_id": pick["agent_id"],
                        "team_id": score["team_id"] if score else None,
                        "reasons": json.loads(pick["reasons"]), "score": score["score"] if score else None,
                        "fatal": bool(score["fatal"]) if score else None,
                        "pending_items": breakdown.get("pending_items", []),
                        "undecided_findings": open_findings.get(conv, 0),
                        "status": review["status"] if review else "to_review",
                        "reviewer": review["reviewer"] if review else None})
        return out

    def review_of(self, conversation_id: str, rubric: Rubric) -> dict[str, Any] | None:
        """Everything the review screen shows of one conversation (``None``: not scored)."""
        score = self.conversation_score(conversation_id)
        if score is None:
            return None
        with self.engine.connect() as conn:
            review = conn.execute(select(reviews).where(
                reviews.c.conversation_id == conversation_id)).mappings().first()
            marks = {r["finding_id"]: dict(r) for r in conn.execute(select(review_marks).where(
                review_marks.c.conversation_id == conversation_id)).mappings()}
        human = json.loads(review["human"]) if review else {}
        rows = []
        for finding in self.findings_for(conversation_id=conversation_id, limit=1000):
            mark = marks.get(finding["finding_id"])
            rows.append({**finding, "origin": mark["origin"] if mark else ("held" if finding["status"] == "review"
                                                                            else "auto"),
                         "decision": mark["decision"] if mark else None, "review_note": mark["note"] if mark else None,
                         "undecided": finding["status"] in UNDECIDED})
        return {"conversation_id": conversation_id, "score": score, "findings": rows,
                "transcript": self.transcript(conversation_id),
                "status": review["status"] if review else "to_review",
                "reviewer": review["reviewer"] if review else None,
                "signed_off_at": review["signed_off_at"] if review else None,
                "note": review["note"] if review else "",
                "human_items": human_items(rubric, human), "labels": label_choices(rubric),
                "appeal_window_h": rubric.appeal_window_h,
                "appeal_deadline": _plus_hours(review["signed_off_at"], rubric.appeal_window_h)
                if review and review["signed_off_at"] else None,
                "audit": self.audit_trail(conversation_id)}

    def signed_off_for(self, agent_id: str | None) -> list[dict[str, Any]]:
        """Signed-off reviews, newest first: one agent's (what they may see), or everyone's (``None``)."""
        query = select(reviews, scores.c.score, scores.c.fatal, scores.c.team_id).join(
            scores, scores.c.conversation_id == reviews.c.conversation_id).where(
            reviews.c.status == "signed_off").order_by(reviews.c.signed_off_at.desc()).limit(1000)
        if agent_id is not None:
            query = query.where(reviews.c.agent_id == agent_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [{k: r[k] for k in ("conversation_id", "day", "agent_id", "team_id", "reviewer", "signed_off_at", "note",
                                   "score", "fatal")} for r in rows]

    def signed_off_at(self, conversation_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(reviews.c.signed_off_at).where(
                reviews.c.conversation_id == conversation_id, reviews.c.status == "signed_off")).scalar()

    # -- review steps ---------------------------------------------------------------------------
    def _open_review(self, conn: Connection, conversation_id: str) -> dict[str, Any]:
        """The conversation's review row, made on the first step; refused once signed off."""
        row = conn.execute(select(reviews).where(reviews.c.conversation_id == conversation_id)).mappings().first()
        if row is None:
            score = conn.execute(select(scores.c.day, scores.c.agent_id).where(
                scores.c.conversation_id == conversation_id)).mappings().first()
            if score is None:
                raise ReviewError(f"conversation {conversation_id!r} is not scored (yet)", 404)
            new = {"conversation_id": conversation_id, "day": score["day"], "agent_id": score["agent_id"],
                   "status": "open", "human": "{}", "reviewer": None, "signed_off_at": None, "note": ""}
            conn.execute(reviews.insert().values(new))
            return new
        if row["status"] == "signed_off":
            raise ReviewError(f"the review of {conversation_id} is signed off: appeal instead")
        return dict(row)

    def decide_finding(self, finding: str, *, confirm: bool, reviewer: str, note: str,
                       rubric_for: RubricFor) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = conn.execute(select(findings).where(findings.c.finding_id == finding)).mappings().first()
            if row is None:
                raise ReviewError(f"no finding {finding!r}", 404)
            self._open_review(conn, row["conversation_id"])
            if row["status"] not in UNDECIDED:
                raise ReviewError(f"finding {finding} is {row['status']}: already decided")
            decision = "confirmed" if confirm else "rejected"
            conn.execute(update(findings).where(findings.c.finding_id == finding).values(status=decision))
            conn.execute(review_marks.insert().values(
                finding_id=finding, conversation_id=row["conversation_id"],
                origin="held" if row["status"] == "review" else "auto", decision=decision, note=note,
                reviewer=reviewer, at=now_iso()))
            score = self.rescore(conn, row["conversation_id"], rubric_for)
            self._audit(conn, reviewer, f"review.{'confirm' if confirm else 'reject'}", row["conversation_id"],
                        {"finding_id": finding, "label": row["label"], "note": note,
                         "score": score["score"] if score else None})
        return {"finding_id": finding, "status": decision, "score": score}

    def add_finding(self, conversation_id: str, *, label: str, note: str, reviewer: str, message_id: str | None,
                    rubric_for: RubricFor) -> dict[str, Any]:
        with self.engine.begin() as conn:
            self._open_review(conn, conversation_id)
            score = conn.execute(select(scores).where(scores.c.conversation_id == conversation_id)).mappings().one()
            rubric = rubric_for(score["shop_id"])
            if label not in {c["label"] for c in label_choices(rubric)}:
                raise ReviewError(f"{label!r} is not a label this scorecard scores", 422)
            fid = finding_id(conversation_id, label, f"manual:{uuid.uuid4()}")
            conn.execute(findings.insert().values(
                finding_id=fid, conversation_id=conversation_id, agent_id=score["agent_id"], team_id=score["team_id"],
                day=score["day"], label=label, message_id=message_id, start=0, end=0, ts_ms=score["closed_ms"],
                matched="", status="confirmed"))  # added by a reviewer: decided already
            conn.execute(review_marks.insert().values(finding_id=fid, conversation_id=conversation_id,
                                                      origin="manual", decision="added", note=note,
                                                      reviewer=reviewer, at=now_iso()))
            rescored = self.rescore(conn, conversation_id, rubric_for)
            self._audit(conn, reviewer, "review.add_finding", conversation_id,
                        {"finding_id": fid, "label": label, "note": note, "message_id": message_id,
                         "score": rescored["score"] if rescored else None})
        return {"finding_id": fid, "label": label, "score": rescored}

    def score_human(self, conversation_id: str, points: dict[str, float], *, reviewer: str,
                    rubric_for: RubricFor) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            review = self._open_review(conn, conversation_id)
            shop = conn.execute(select(scores.c.shop_id).where(scores.c.conversation_id == conversation_id)).scalar()
            rubric = rubric_for(str(shop))
            limits = {item: maximum for s in rubric.sections for item, maximum in s.human_items.items()}
            for item, value in points.items():
                if item not in limits:
                    raise ReviewError(f"{item!r} is not a human item of this scorecard", 422)
                if not 0 <= value <= limits[item]:
                    raise ReviewError(f"{item}: {value} is outside 0–{limits[item]}", 422)
            human = {**json.loads(review["human"]), **points}
            conn.execute(update(reviews).where(reviews.c.conversation_id == conversation_id).values(
                human=json.dumps(human, ensure_ascii=False, sort_keys=True)))
            score = self.rescore(conn, conversation_id, rubric_for)
            self._audit(conn, reviewer, "review.score_items", conversation_id,
                        {"points": points, "score": score["score"] if score else None})
        return score

    def sign_off(self, conversation_id: str, *, reviewer: str, note: str, rubric_for: RubricFor) -> dict[str, Any]:
        """结果确认: every finding decided and every human item scored, then the result is the agent's to see."""
        with self.engine.begin() as conn:
            self._open_review(conn, conversation_id)
            undecided = list(conn.execute(select(findings.c.finding_id).where(
                findings.c.conversation_id == conversation_id, findings.c.status.in_(UNDECIDED))).scalars())
            score = self.rescore(conn, conversation_id, rubric_for)
            pending = score["breakdown"].get("pending_items", []) if score else []
            if undecided or pending:
                raise ReviewError(f"not ready to sign off: {len(undecided)} finding(s) to confirm or reject, "
                                  f"human items pending: {', '.join(pending) or 'none'}")
            at = now_iso()
            conn.execute(update(reviews).where(reviews.c.conversation_id == conversation_id).values(
                status="signed_off", reviewer=reviewer, signed_off_at=at, note=note))
            self._audit(conn, reviewer, "review.sign_off", conversation_id,
                        {"note": note, "score": score["score"] if score else None})
        return {"conversation_id": conversation_id, "status": "signed_off", "signed_off_at": at, "score": score}


def _item_max(section: dict[str, Any], item: str) -> float:
    """An item's maximum as scored (breakdowns written before ``item_max`` existed: the section's maximum)."""
    return float(section.get("item_max", {}).get(item, section["max"]))


def _plus_hours(iso: str, hours: float) -> str:
    moment = datetime.datetime.fromisoformat(iso) + datetime.timedelta(hours=hours)
    return moment.isoformat(timespec="milliseconds")
