"""人工质检: QA staff work through the day's sample — confirm or reject each automatic finding, add manual
findings from the scorecard's labels (fatal ones included), score the rubric's human items, and sign off
(结果确认). Every step is in the audit trail and rescores the conversation from its stored summary; the steps
are ``zhijian.store.states.review_transition`` and ``finding_transition``.

How a review changes the score, without touching the closing summary:

* a rejected finding gets status ``rejected`` and is taken out like a dismissed one;
* a manual finding (and a held-back model finding a reviewer confirms) is a row of ``findings`` marked in
  ``review_marks``: it counts as an extra finding of its label, until rejected or dismissed on appeal;
* the human items' points live in ``reviews.human``; an item without points is pending (0, listed).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from detectors.rubric import SCORED_LABELS, Rubric
from zhijian.scoring import finding_id
from zhijian.store import states
from zhijian.store.audit import Audit, now_iso
from zhijian.store.conversations import Messages, RubricFor
from zhijian.store.errors import ReviewError
from zhijian.store.quality import Findings, Scores
from zhijian.store.schema import findings, review_marks, reviews, samples, scores

UNDECIDED = states.UNDECIDED


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


class Review:
    def __init__(self, engine: Engine, scores: Scores, findings: Findings, messages: Messages, audit: Audit) -> None:
        self.engine = engine
        self.scores = scores
        self.findings = findings
        self.messages = messages
        self.audit = audit

    # -- reading --------------------------------------------------------------------------------
    def queue(self, day: str) -> list[dict[str, Any]]:
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

    def of(self, conversation_id: str, rubric: Rubric) -> dict[str, Any] | None:
        """Everything the review screen shows of one conversation (``None``: not scored)."""
        score = self.scores.get(conversation_id)
        if score is None:
            return None
        with self.engine.connect() as conn:
            review = conn.execute(select(reviews).where(
                reviews.c.conversation_id == conversation_id)).mappings().first()
            marks = {r["finding_id"]: dict(r) for r in conn.execute(select(review_marks).where(
                review_marks.c.conversation_id == conversation_id)).mappings()}
        human = json.loads(review["human"]) if review else {}
        rows = []
        for finding in self.findings.find(conversation_id=conversation_id, limit=1000):
            mark = marks.get(finding["finding_id"])
            rows.append({**finding, "origin": mark["origin"] if mark else ("held" if finding["status"] == "review"
                                                                            else "auto"),
                         "decision": mark["decision"] if mark else None, "review_note": mark["note"] if mark else None,
                         "undecided": finding["status"] in UNDECIDED})
        return {"conversation_id": conversation_id, "score": score, "findings": rows,
                "transcript": self.messages.transcript(conversation_id),
                "status": review["status"] if review else "to_review",
                "reviewer": review["reviewer"] if review else None,
                "signed_off_at": review["signed_off_at"] if review else None,
                "note": review["note"] if review else "",
                "human_items": human_items(rubric, human), "labels": label_choices(rubric),
                "appeal_window_h": rubric.appeal_window_h,
                "appeal_deadline": states.appeal_window_ends(review["signed_off_at"], rubric.appeal_window_h)
                if review and review["signed_off_at"] else None,
                "audit": self.audit.trail(conversation_id)}

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
        states.review_transition(row["status"] if row else "to_review", "step", conversation_id=conversation_id)
        if row is not None:
            return dict(row)
        score = conn.execute(select(scores.c.day, scores.c.agent_id).where(
            scores.c.conversation_id == conversation_id)).mappings().first()
        if score is None:
            raise ReviewError(f"conversation {conversation_id!r} is not scored (yet)", "not_found")
        new = {"conversation_id": conversation_id, "day": score["day"], "agent_id": score["agent_id"],
               "status": "open", "human": "{}", "reviewer": None, "signed_off_at": None, "note": ""}
        conn.execute(reviews.insert().values(new))
        return new

    def decide_finding(self, finding: str, *, confirm: bool, reviewer: str, note: str,
                       rubric_for: RubricFor) -> dict[str, Any]:
        with self.engine.begin() as conn:
            row = conn.execute(select(findings).where(findings.c.finding_id == finding)).mappings().first()
            if row is None:
                raise ReviewError(f"no finding {finding!r}", "not_found")
            self._open_review(conn, row["conversation_id"])
            decision = states.finding_transition(row["status"], "confirm" if confirm else "reject", finding_id=finding)
            conn.execute(update(findings).where(findings.c.finding_id == finding).values(status=decision))
            conn.execute(review_marks.insert().values(
                finding_id=finding, conversation_id=row["conversation_id"],
                origin="held" if row["status"] == "review" else "auto", decision=decision, note=note,
                reviewer=reviewer, at=now_iso()))
            score = self.scores.rescore(conn, row["conversation_id"], rubric_for)
            Audit.record(conn, reviewer, f"review.{'confirm' if confirm else 'reject'}", row["conversation_id"],
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
                raise ReviewError(f"{label!r} is not a label this scorecard scores", "invalid")
            fid = finding_id(conversation_id, label, f"manual:{uuid.uuid4()}")
            conn.execute(findings.insert().values(
                finding_id=fid, conversation_id=conversation_id, agent_id=score["agent_id"], team_id=score["team_id"],
                day=score["day"], label=label, message_id=message_id, start=0, end=0, ts_ms=score["closed_ms"],
                matched="", status="confirmed"))  # added by a reviewer: decided already
            conn.execute(review_marks.insert().values(finding_id=fid, conversation_id=conversation_id,
                                                      origin="manual", decision="added", note=note,
                                                      reviewer=reviewer, at=now_iso()))
            rescored = self.scores.rescore(conn, conversation_id, rubric_for)
            Audit.record(conn, reviewer, "review.add_finding", conversation_id,
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
                    raise ReviewError(f"{item!r} is not a human item of this scorecard", "invalid")
                if not 0 <= value <= limits[item]:
                    raise ReviewError(f"{item}: {value} is outside 0–{limits[item]}", "invalid")
            human = {**json.loads(review["human"]), **points}
            conn.execute(update(reviews).where(reviews.c.conversation_id == conversation_id).values(
                human=json.dumps(human, ensure_ascii=False, sort_keys=True)))
            score = self.scores.rescore(conn, conversation_id, rubric_for)
            Audit.record(conn, reviewer, "review.score_items", conversation_id,
                         {"points": points, "score": score["score"] if score else None})
        return score

    def sign_off(self, conversation_id: str, *, reviewer: str, note: str, rubric_for: RubricFor) -> dict[str, Any]:
        """结果确认: every finding decided and every human item scored, then the result is the agent's to see."""
        with self.engine.begin() as conn:
            review = self._open_review(conn, conversation_id)
            undecided = list(conn.execute(select(findings.c.finding_id).where(
                findings.c.conversation_id == conversation_id, findings.c.status.in_(UNDECIDED))).scalars())
            score = self.scores.rescore(conn, conversation_id, rubric_for)
            pending = score["breakdown"].get("pending_items", []) if score else []
            status = states.review_transition(review["status"], "sign_off", conversation_id=conversation_id,
                                              undecided=len(undecided), pending=tuple(pending))
            at = now_iso()
            conn.execute(update(reviews).where(reviews.c.conversation_id == conversation_id).values(
                status=status, reviewer=reviewer, signed_off_at=at, note=note))
            Audit.record(conn, reviewer, "review.sign_off", conversation_id,
                         {"note": note, "score": score["score"] if score else None})
        return {"conversation_id": conversation_id, "status": status, "signed_off_at": at, "score": score}
