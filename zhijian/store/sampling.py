"""What the 抽检 rules need from SQL besides the day's scores, and the review queue's neighbours rule.

A standalone class over an SQLAlchemy engine (reads ``review_samples``, ``findings``, ``review_marks`` and
``conversation_scores``; writes ``review_samples``):

* which conversations of a day have a problem a reviewer confirmed or added (rule 4 of
  ``zhijian.scoring.sampling``: neighbours only around confirmed or critical problems);
* the random and reduced picks already drawn in a span of days (``per = "month"``, and the reduced sample's
  five a month and one-month span);
* when a reviewer confirms a finding or adds one, the agent's previous and next conversation of that day join
  the day's sample ("质检过程中发现服务问题,应对该录音前后录音依次听取录音").
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import Engine, and_, select

from zhijian.store.schema import findings, review_marks, samples, scores

PROBLEM_DECISIONS = ("confirmed", "added")
GONE = ("rejected", "dismissed", "review")  # a finding no longer (or not yet) counted


class SampleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def confirmed_conversations(self, first_day: str, last_day: str | None = None) -> set[str]:
        """Conversations of the days with a finding a reviewer confirmed or added that still counts."""
        query = select(findings.c.conversation_id).join(
            review_marks, review_marks.c.finding_id == findings.c.finding_id).where(
            findings.c.day >= first_day, findings.c.day <= (last_day or first_day),
            review_marks.c.decision.in_(PROBLEM_DECISIONS), findings.c.status.not_in(GONE))
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def picks_between(self, first_day: str, last_day: str, reason: str) -> Counter[str]:
        """Per agent: conversations sampled for ``reason`` on the days [first_day, last_day]."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(samples.c.agent_id, samples.c.reasons).where(
                samples.c.day >= first_day, samples.c.day <= last_day)).all()
        return Counter(str(agent) for agent, reasons in rows if reason in json.loads(reasons))

    def add_neighbours(self, conversation_id: str) -> list[dict[str, Any]]:
        """The agent's previous and next conversation of the same day join that day's sample (next to the problem
        a reviewer just confirmed or added). Returns the entries added or extended."""
        with self.engine.begin() as conn:
            row = conn.execute(select(scores.c.day, scores.c.agent_id, scores.c.opened_ms).where(
                scores.c.conversation_id == conversation_id)).mappings().first()
            if row is None or row["agent_id"] is None:
                return []
            same = and_(scores.c.day == row["day"], scores.c.agent_id == row["agent_id"])
            opened = row["opened_ms"] or 0
            key = (scores.c.opened_ms, scores.c.conversation_id)
            before = conn.execute(select(scores.c.conversation_id).where(
                same, (scores.c.opened_ms < opened) | ((scores.c.opened_ms == opened)
                                                       & (scores.c.conversation_id < conversation_id))).order_by(
                *(k.desc() for k in key)).limit(1)).scalar()
            after = conn.execute(select(scores.c.conversation_id).where(
                same, (scores.c.opened_ms > opened) | ((scores.c.opened_ms == opened)
                                                       & (scores.c.conversation_id > conversation_id))).order_by(
                *key).limit(1)).scalar()
            changed = []
            for neighbour, reason in ((conversation_id, "confirmed_finding"), (before, "before_a_finding"),
                                      (after, "after_a_finding")):
                if neighbour is None:
                    continue
                existing = conn.execute(select(samples.c.reasons).where(
                    samples.c.day == row["day"], samples.c.conversation_id == neighbour)).scalar()
                if existing is None:
                    conn.execute(samples.insert().values(day=row["day"], conversation_id=neighbour,
                                                         agent_id=row["agent_id"],
                                                         reasons=json.dumps([reason], ensure_ascii=False)))
                    changed.append({"conversation_id": neighbour, "reasons": [reason]})
                elif reason not in (reasons := json.loads(existing)):
                    reasons.append(reason)
                    conn.execute(samples.update().where(
                        samples.c.day == row["day"], samples.c.conversation_id == neighbour).values(
                        reasons=json.dumps(reasons, ensure_ascii=False)))
                    changed.append({"conversation_id": neighbour, "reasons": reasons})
        return changed
