"""``zhijian rollup --xlsx``: the workbook opens with openpyxl and holds the rollup's rows, as numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest

from tests.factories import DAY, conversation, save
from zhijian.cli import main
from zhijian.reports.xlsx import alerts_sheet, number, workbook_bytes
from zhijian.store.database import Database


def test_rollup_xlsx_holds_the_rollups_rows(store: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    summaries = [conversation("x1", "A", 0), conversation("x2", "A", 100, bad="嫌贵别买"),
                 conversation("x3", "B", 300, slow=True), conversation("x4", "C", 500, team="t2", bad="你自己想办法吧")]
    assert save(store, summaries) == 4
    monkeypatch.setenv("DATABASE_URL", store.url)
    assert main(["rollup", "--date", DAY, "--out", str(tmp_path), "--xlsx"]) == 0
    printed = capsys.readouterr().out.split()
    workbook_path = tmp_path / f"report-{DAY}.xlsx"
    assert str(workbook_path) in printed
    book = openpyxl.load_workbook(workbook_path)
    assert book.sheetnames == ["坐席", "班组", "抽检样本"]
    for sheet, name in (("坐席", "agents"), ("班组", "teams"), ("抽检样本", "review-sample")):
        ws = book[sheet]
        rows = list(csv.reader(io.StringIO((tmp_path / f"{name}-{DAY}.csv").read_text(encoding="utf-8-sig"))))
        cells = [[c.value for c in row] for row in ws.iter_rows()]
        assert len(cells) == len(rows) and ws.freeze_panes == "A2"
        assert [[number(v) for v in row] for row in rows[1:]] == cells[1:]
        assert all(ws.column_dimensions[letter].width >= 8 for letter in "ABC")
    agents = book["坐席"]
    header = [c.value for c in agents[1]]
    assert header[:3] == ["坐席", "会话数", "消息数"] and "平均分" in header and "问题·语气词不当" in header
    by_agent = {row[0].value: row for row in agents.iter_rows(min_row=2)}
    assert by_agent["A"][1].value == 2 and isinstance(by_agent["A"][header.index("平均分")].value, float)
    assert agents.cell(row=2, column=header.index("回复率") + 1).number_format == "0.0%"


def test_alert_sheet_has_chinese_headers_and_real_times() -> None:
    import datetime

    alert = {"alert_id": "x", "rule": "customer_waiting", "severity": "critical", "fatal": False, "shop_id": "s",
             "team_id": "t", "agent_id": "a", "conversation_id": "c", "excerpt": "在吗", "ts_ms": 1_795_000_000_000,
             "detail": {"waited_s": 61.5}, "state": "open", "action": {"state": "claimed", "claimed_by": "lead"}}
    book = openpyxl.load_workbook(io.BytesIO(workbook_bytes([alerts_sheet([alert], datetime.UTC)])))
    ws = book["告警"]
    row = [c.value for c in ws[2]]
    assert [c.value for c in ws[1]][:3] == ["时间", "规则", "严重程度"]
    assert row[0] == datetime.datetime(2026, 11, 18, 11, 6, 40)  # ts_ms in UTC
    assert row[1] == "顾客等待" and row[2] == "严重"
    assert row[9] == 61.5 and row[10] == "已认领" and row[11] == "lead"
