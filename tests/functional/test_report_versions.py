"""A changed result after a report re-issues it as version N+1 with what changed (issue 17, item 6), and a problem
confirmed in review pulls the agent's previous and next conversation into the sample (item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from api import quality, review, store_errors
from api.auth import Auth
from tests.factories import T0, AsgiClient, book_with_human_item, stored, token
from zhijian.reports.period import period_of, run_period_rollup
from zhijian.reports.rollup import reissue_stale, run_rollup, write_version
from zhijian.scoring import rubric_lookup
from zhijian.store.database import Database

ADMIN = "admin-token-for-tests"


@pytest.fixture
def floor(store: Database) -> tuple[AsgiClient, str]:
    book = book_with_human_item()
    store.users.add("qa1", "pw-qa-1234", role="qa")
    store.users.add("a09", "pw-agent-1234", role="agent", agent_id="a09", team_id="t1")
    stored(store, book, "rev-1", "您好，有货的，请您放心")
    stored(store, book, "rev-2", "说了多少遍了，您自己看详情")  # conflict −5, deflection −3
    stored(store, book, "rev-3", "您好，有货的，请您放心")
    app = FastAPI()
    store_errors.install(app)  # as create_app does
    auth = Auth(store, ADMIN)
    app.state.auth = auth
    app.include_router(quality.router(store, book, auth))
    app.include_router(review.router(store, book, auth))
    client = AsgiClient(app)
    client.day = rubric_lookup(book)("s1").day(T0)
    client.book = book  # type: ignore[attr-defined]
    return client, client.day


def test_an_accepted_appeal_reissues_the_days_and_weeks_reports_as_version_2(
        floor: tuple[AsgiClient, str], store: Database, tmp_path: Path) -> None:
    client, day = floor
    book = client.book  # type: ignore[attr-defined]
    rubric = rubric_lookup(book)("s1")
    first = run_rollup(store, day, tmp_path / "v1", rubric, book=book)
    week = period_of("week", day)
    assert run_period_rollup(store, "week", day, tmp_path / "v1").version == 1
    html_v1 = first.report_html.read_text(encoding="utf-8")
    # rev-1 and rev-3: 服务态度 20 + 准确全面 pending (0) = 20, 服务用语 30, 响应时效 30, 流程规范 10: 90;
    # rev-2: 20 − 5 − 3 = 12 → 82
    assert first.version == 1 and "第 1 版" in html_v1 and "本版变更" not in html_v1
    again = run_rollup(store, day, tmp_path / "again", rubric, book=book)
    assert again.version == 1 and again.report_html.read_bytes() == first.report_html.read_bytes()  # nothing moved
    versions = store.report_versions
    assert [v["version"] for v in versions.versions("day", day)] == [1]

    admin = {"authorization": f"Bearer {ADMIN}"}
    agent = token(store, "a09", "pw-agent-1234")
    findings = {f["label"]: f for f in client.get("/api/conversations/rev-2/score", headers=admin).json()["findings"]}
    appeal = client.post(f"/api/findings/{findings['deflection']['finding_id']}/appeals",
                         json={"reason": "顾客要求自己查看详情页"}, headers=agent)
    assert appeal.status_code == 201
    decided = client.post(f"/api/appeals/{appeal.json()['appeal_id']}/decision", json={"accept": True},
                          headers=admin).json()
    assert decided["score"]["score"] == 85.0  # the deflection's −3 is out: 82 + 3
    assert [s["day"] for s in versions.stale_days()] == [day]

    sample_v1 = store.samples.of_day(day)
    store.samples.save(day, sample_v1[:1])  # QA's queue for the day, as it stands
    done = reissue_stale(store, tmp_path / "v2", rubric, book=book)
    assert done == [("day", day, 2), ("week", week.name, 2)]  # the month was never reported: nothing to re-issue
    assert versions.stale_days() == []
    v2 = versions.get("day", day, 2)
    assert v2 is not None
    # a09's mean: (90 + 82 + 90) / 3 = 87.333 → (90 + 85 + 90) / 3 = 88.333
    assert v2["changes"] == {
        "conversations": [{"conversation_id": "rev-2", "agent_id": "a09", "old_score": 82.0, "new_score": 85.0,
                           "old_fatal": False, "new_fatal": False}],
        "agents": [{"agent_id": "a09", "old_mean_score": 87.333, "new_mean_score": 88.333}]}
    html_v2 = (tmp_path / "v2" / f"report-{day}.html").read_text(encoding="utf-8")
    assert "第 2 版" in html_v2 and "本版变更（相对第 1 版）" in html_v2 and "rev-2" in html_v2
    changes = (tmp_path / "v2" / f"changes-{day}-v2.csv").read_text(encoding="utf-8-sig").splitlines()
    assert changes[:2] == ["会话,坐席,原得分,新得分,原致命,新致命", "rev-2,a09,82.0,85.0,False,False"]
    assert store.samples.of_day(day) == sample_v1[:1]  # the re-issue kept the sample QA works through

    # every version stays retrievable: API and CLI
    listed = client.get(f"/api/reports/day/{day}/versions", headers=admin).json()["versions"]
    assert [(v["version"], len(v["changes"].get("conversations", []))) for v in listed] == [(1, 0), (2, 1)]
    assert client.get(f"/api/reports/day/{day}/versions", headers=agent).status_code == 404
    one = client.get(f"/api/reports/day/{day}/versions/1", headers=admin).json()
    assert f"report-{day}.html" in one["files"] and one["version"] == 1
    old = client.get(f"/api/reports/day/{day}/versions/1/files/report-{day}.html", headers=admin)
    assert old.status_code == 200 and old.json()["media_type"] == "text/html" and old.json()["content"] == html_v1
    assert client.get(f"/api/reports/day/{day}/versions/3", headers=admin).status_code == 404
    assert client.get(f"/api/reports/week/{week.name}/versions/2", headers=admin).json()["changes"]["conversations"]
    written = write_version(store, "day", day, 1, tmp_path / "old")
    assert (tmp_path / "old" / f"report-{day}-v1.html") in written
    assert (tmp_path / "old" / f"report-{day}-v1.html").read_text(encoding="utf-8") == html_v1


def test_a_review_step_before_any_report_marks_nothing(floor: tuple[AsgiClient, str], store: Database) -> None:
    client, _day = floor
    admin = {"authorization": f"Bearer {ADMIN}"}
    scored = client.post("/api/review/conversations/rev-1/items", json={"points": {"准确全面": 10}}, headers=admin)
    assert scored.status_code == 200 and scored.json()["score"]["score"] == 100.0
    assert store.report_versions.stale_days() == []  # no report out yet: the first one has the new score


def test_a_confirmed_finding_pulls_the_agents_previous_and_next_conversation_into_the_sample(
        floor: tuple[AsgiClient, str], store: Database, tmp_path: Path) -> None:
    client, day = floor
    book = client.book  # type: ignore[attr-defined]
    store.samples.save(day, [{"conversation_id": "rev-2", "agent_id": "a09", "reasons": ["random_1pct"]}])
    qa = token(store, "qa1", "pw-qa-1234")
    detail = client.get("/api/review/conversations/rev-2", headers=qa).json()
    deflection = next(f for f in detail["findings"] if f["label"] == "deflection")
    # rejected: not a problem, nothing more to hear
    conflict = next(f for f in detail["findings"] if f["label"] == "conflict")
    client.post(f"/api/review/findings/{conflict['finding_id']}/decision", json={"confirm": False}, headers=qa)
    assert [q["conversation_id"] for q in client.get("/api/review/queue", params={"date": day},
                                                     headers=qa).json()["conversations"]] == ["rev-2"]
    client.post(f"/api/review/findings/{deflection['finding_id']}/decision", json={"confirm": True}, headers=qa)
    queue = {q["conversation_id"]: q["reasons"] for q in client.get(
        "/api/review/queue", params={"date": day}, headers=qa).json()["conversations"]}
    assert queue == {"rev-1": ["before_a_finding"], "rev-2": ["random_1pct", "confirmed_finding"],
                     "rev-3": ["after_a_finding"]}
    # the day's rollup, run again, keeps them: the confirmed problem and both neighbours (cap 3)
    run_rollup(store, day, tmp_path, rubric_lookup(book)("s1"), book=book)
    again = {s["conversation_id"]: s["reasons"] for s in store.samples.of_day(day)}
    assert "confirmed_finding" in again["rev-2"] and "before_a_finding" in again["rev-1"] \
        and "after_a_finding" in again["rev-3"]


def test_the_rollup_command_reissues_lists_and_writes_versions(
        floor: tuple[AsgiClient, str], store: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from zhijian.cli import main

    client, day = floor
    monkeypatch.setenv("DATABASE_URL", store.url)
    assert main(["rollup", "--date", day, "--out", str(tmp_path / "v1")]) == 0
    capsys.readouterr()
    admin = {"authorization": f"Bearer {ADMIN}"}
    scored = client.post("/api/review/conversations/rev-1/items", json={"points": {"准确全面": 10}}, headers=admin)
    assert scored.json()["score"]["score"] == 100.0  # 90 → 100 after the day's report: the report is stale
    assert main(["rollup", "--reissue", "--out", str(tmp_path / "v2"), "--date", day]) == 0
    assert f"re-issued day {day} as version 2" in capsys.readouterr().out
    assert (tmp_path / "v2" / f"changes-{day}-v2.csv").exists()
    assert main(["rollup", "--versions", "--date", day]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" issued ")[0] for line in lines] == [f"day {day} v1", f"day {day} v2"]
    assert lines[1].endswith("1 conversation(s), 1 agent(s) changed")
    assert main(["rollup", "--version", "1", "--date", day, "--out", str(tmp_path / "old")]) == 0
    assert (tmp_path / "old" / f"report-{day}-v1.html").read_text(encoding="utf-8") == (
        tmp_path / "v1" / f"report-{day}.html").read_text(encoding="utf-8")
    assert main(["rollup", "--version", "7", "--date", day, "--out", str(tmp_path / "old")]) == 3
