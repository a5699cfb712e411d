"""Excel workbooks (openpyxl): Chinese headers, a frozen header row, column widths, numbers as numbers.

Used by ``zhijian rollup --xlsx`` (``report-<day>.xlsx`` from the rollup's CSV files) and by the API's
downloads of the alert wall and the scoreboard (``api/export.py``).
"""

from __future__ import annotations

import csv
import datetime
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

HEADERS = {
    "agent_id": "坐席", "team_id": "班组", "shop_id": "店铺", "conversation_id": "会话", "conversations": "会话数",
    "messages": "消息数", "agent_messages": "坐席消息数", "first_response_mean_s": "平均首次响应(秒)",
    "first_response_p90_s": "首次响应P90(秒)", "avg_response_s": "平均响应(秒)", "reply_rate": "回复率",
    "waiting_alerts": "等待告警数", "politeness_rate": "礼貌用语率", "mean_score": "平均得分", "fatal": "致命会话数",
    "appeals_opened": "申诉数", "appeals_accepted": "申诉通过数", "alerts_claimed": "已认领告警",
    "alerts_resolved": "已处理告警", "alerts_false_positive": "误报告警", "reasons": "抽检原因",
}
LABELS = {
    "banned_word": "禁忌用语", "impolite_address": "不礼貌称呼", "forbidden_phrase": "服务禁语",
    "conflict": "与顾客冲突",
    "deflection": "推诿", "pii_leak": "泄露隐私", "customer_anger": "顾客不满", "missing_greeting": "缺少开头语",
    "missing_closing": "缺少结束语", "politeness_rate": "礼貌用语不足", "unanswered_at_end": "回复中断",
    "customer_waiting": "顾客等待", "slow_first_response": "首次响应超时",
}
SEVERITIES = {"critical": "严重", "warning": "警告", "info": "提示"}
PERCENT = {"reply_rate", "politeness_rate", "回复率", "礼貌用语使用率"}
HEADER_FILL = PatternFill("solid", fgColor="DDE7F5")


def _width(value: Any) -> int:
    text = "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime.datetime) \
        else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def number(text: str) -> int | float | str | None:
    """A CSV cell as a number when it is one (numbers stay numbers in Excel)."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class Sheet:
    def __init__(self, title: str, keys: Sequence[str], headers: Sequence[str], rows: Iterable[Sequence[Any]]):
        self.title, self.keys, self.headers, self.rows = title, list(keys), list(headers), [list(r) for r in rows]


def workbook_bytes(sheets: Sequence[Sheet]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        ws.append(sheet.headers)
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
            cell.alignment = Alignment(horizontal="center", vertical="center")
        for row in sheet.rows:
            ws.append(row)
        ws.freeze_panes = "A2"
        for index, key in enumerate(sheet.keys, start=1):
            letter = get_column_letter(index)
            values = [sheet.headers[index - 1], *(r[index - 1] for r in sheet.rows if index - 1 < len(r))]
            ws.column_dimensions[letter].width = min(max(max(_width(v) for v in values) + 2, 8), 60)
            for (cell,) in ws.iter_rows(min_row=2, min_col=index, max_col=index):
                if isinstance(cell.value, datetime.datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                elif key in PERCENT and isinstance(cell.value, int | float):
                    cell.number_format = "0.0%"
                elif isinstance(cell.value, float):
                    cell.number_format = "0.00"
        if sheet.rows:
            ws.auto_filter.ref = ws.dimensions
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _csv_sheet(title: str, path: Path) -> Sheet:
    """A rollup CSV as a sheet, with the CSV's own headers (Chinese, or English with ``--lang en``)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    headers = rows[0] if rows else []
    return Sheet(title, list(headers), list(headers), ([number(c) for c in row] for row in rows[1:]))


def rollup_workbook(agents_csv: Path, teams_csv: Path, sample_csv: Path, out: Path) -> Path:
    """``report-<day>.xlsx`` next to the rollup's CSV files: 坐席, 班组, 抽检样本."""
    sheets = [_csv_sheet("坐席", agents_csv), _csv_sheet("班组", teams_csv), _csv_sheet("抽检样本", sample_csv)]
    out.write_bytes(workbook_bytes(sheets))
    return out


def alerts_sheet(alerts: Sequence[Mapping[str, Any]], zone: datetime.tzinfo) -> Sheet:
    keys = ["ts", "rule", "severity", "fatal", "shop_id", "team_id", "agent_id", "conversation_id", "excerpt",
            "waited_s", "state", "claimed_by", "alert_id"]
    headers = ["时间", "规则", "严重程度", "致命", "店铺", "班组", "坐席", "会话", "原文摘录", "等待(秒)", "处理状态",
               "认领人", "告警编号"]
    states = {"open": "待处理", "claimed": "已认领", "resolved": "已处理", "false_positive": "误报",
              "cleared": "已回复", "unanswered": "未回复"}
    rows = []
    for a in alerts:
        action = a.get("action") or {}
        detail = a.get("detail") or {}
        waited = next((detail[k] for k in ("waited_s", "first_response_s", "unanswered_s")
                       if isinstance(detail.get(k), int | float)), None)
        when = datetime.datetime.fromtimestamp(int(a.get("ts_ms") or 0) / 1000, zone).replace(tzinfo=None)
        state = action.get("state") or a.get("state") or "open"
        rows.append([when, LABELS.get(str(a.get("rule")), a.get("rule")), SEVERITIES.get(str(a.get("severity")),
                     a.get("severity")), "是" if a.get("fatal") else "否", a.get("shop_id"), a.get("team_id"),
                     a.get("agent_id"), a.get("conversation_id"), a.get("excerpt"), waited,
                     states.get(str(state), state), action.get("claimed_by"), a.get("alert_id")])
    return Sheet("告警", keys, headers, rows)


def scoreboard_sheet(board: Sequence[Mapping[str, Any]], kpi_columns: Sequence[str],
                     label_columns: Sequence[str]) -> Sheet:
    present = [k for k in kpi_columns if any(k in line for line in board)]
    keys = ["agent_id", "team_id", *present, *(f"label:{k}" for k in label_columns)]
    headers = [HEADERS["agent_id"], HEADERS["team_id"], *(HEADERS.get(k, k) for k in present),
               *(f"{LABELS.get(k, k)}(次)" for k in label_columns)]
    rows = [[line.get("agent_id"), line.get("team_id"), *(line.get(k) for k in present),
             *((line.get("labels") or {}).get(k, 0) for k in label_columns)] for line in board]
    return Sheet("坐席得分", keys, headers, rows)
