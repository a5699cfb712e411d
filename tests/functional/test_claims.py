"""Claim → resolve on SQLite and PostgreSQL, and its place in the nightly rollup."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from detectors import load_ruleset
from detectors.rubric import rubric_of
from tests.factories import alert, conversation
from zhijian.reports.rollup import run_rollup
from zhijian.store.database import Database
from zhijian.store.errors import ClaimError
from zhijian.store.users import Principal

RUBRIC = rubric_of(load_ruleset().rubric)
T0 = 1_795_000_000_000
LEAD_A, LEAD_A2 = Principal("lead-a", "floor_lead", "A"), Principal("lead-a2", "floor_lead", "A")
SUPER = Principal("sup", "supervisor")


def test_claim_note_resolve_with_an_audit_trail(store: Database) -> None:
    store.alerts.save([alert("x1", T0, team_id="A", agent_id="ann"), alert("x2", T0 + 1, team_id="A")])
    assert store.claims.of("x1")["state"] == "open"
    claimed = store.claims.act("x1", LEAD_A, "claim", "on my way")
    assert (claimed["state"], claimed["claimed_by"]) == ("claimed", "lead-a")
    with pytest.raises(ClaimError, match="claimed by lead-a"):
        store.claims.act("x1", LEAD_A2, "claim")
    store.claims.act("x1", LEAD_A, "note", "talked to the agent")
    done = store.claims.act("x1", LEAD_A, "false_positive", "the customer quoted it")
    assert done["state"] == "false_positive" and [n["text"] for n in done["notes"]] == [
        "on my way", "talked to the agent", "the customer quoted it"]
    with pytest.raises(ClaimError, match="already false_positive"):
        store.claims.act("x1", SUPER, "resolved")
    store.claims.act("x2", LEAD_A2, "claim")
    assert store.claims.act("x2", SUPER, "resolved")["resolved_by"] == "sup"  # a supervisor may take over
    with pytest.raises(ClaimError) as missing:
        store.claims.act("nope", LEAD_A, "claim")
    assert missing.value.kind == "not_found"
    assert [e["action"] for e in store.audit.trail("x1")] == ["alert.claim", "alert.note", "alert.false_positive"]
    assert sorted(a["state"] for a in store.claims.counts(T0, T0 + 10)) == ["false_positive", "resolved"]


def test_the_rollup_counts_what_floor_leads_did(store: Database, tmp_path: Path) -> None:
    day = RUBRIC.day(T0)
    store.alerts.save([alert("y1", T0, team_id="A", agent_id="ann"), alert("y2", T0 + 5, team_id="A",
                                                                             agent_id="ann")])
    store.claims.act("y1", LEAD_A, "resolved")
    store.claims.act("y2", LEAD_A, "false_positive")
    store.scores.save_scored([conversation("z1", "ann", 0, team="A")], lambda _shop: RUBRIC)
    files = run_rollup(store, day, tmp_path, RUBRIC, lang="en")
    (ann,) = csv.DictReader(files.agents_csv.read_text(encoding="utf-8-sig").splitlines())
    assert (ann["agent_id"], ann["alerts_claimed"], ann["alerts_resolved"], ann["alerts_false_positive"]) == (
        "ann", "2", "1", "1")
    (team,) = csv.DictReader(files.teams_csv.read_text(encoding="utf-8-sig").splitlines())
    assert (team["team_id"], team["alerts_claimed"]) == ("A", "2")
