"""``zhijian rollup --period week|month``: the weekly (Monday 公示) and monthly reports, like the daily one.

For the period holding ``day`` (a week is Monday–Sunday on the floor's calendar, a month the calendar month):
``agents-<period>.csv`` and ``teams-<period>.csv`` (UTF-8 with a BOM) ranked by mean score (ties: fewer fatal,
then the id), each line with the previous period's mean score and rank and the change; and ``report-<period>.html``
(self-contained, no scripts) with the floor's figures against the previous period and the ranked tables. Pure
over the stored scores: re-running a period gives byte-identical files.
"""

from __future__ import annotations

import csv
import datetime
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhijian.reports.rollup import EmptyDay, _number, changes_csv, changes_html, header
from zhijian.scoring import kpi
from zhijian.store.database import Database
from zhijian.store.report_versions import snapshot_of

PERIODS = ("week", "month")
COLUMNS = ("conversations", "mean_score", "fatal", "first_response_mean_s", "avg_response_s", "inquiries",
           "answered_inquiries", "reply_rate", "politeness_rate", "appeals_opened", "appeals_accepted")
WORDS = {
    "zh": {"week": "质检周报", "month": "质检月报", "rank": "排名", "previous_mean_score": "上期平均分",
           "mean_score_change": "平均分变化", "previous_rank": "上期排名", "rank_change": "名次变化",
           "overall": "与上期对比", "metric": "指标", "this": "本期", "before": "上期", "delta": "变化",
           "agents": "坐席排名", "teams": "班组排名"},
    "en": {"week": "QA weekly report", "month": "QA monthly report", "rank": "rank",
           "previous_mean_score": "previous_mean_score", "mean_score_change": "mean_score_change",
           "previous_rank": "previous_rank", "rank_change": "rank_change", "overall": "Against the previous period",
           "metric": "Metric", "this": "This period", "before": "Previous period", "delta": "Change",
           "agents": "Agents ranked", "teams": "Teams ranked"},
}


@dataclass(frozen=True)
class Period:
    kind: str
    name: str  # 2026-W47 | 2026-11
    first: str
    last: str


@dataclass(frozen=True)
class PeriodFiles:
    agents_csv: Path
    teams_csv: Path
    report_html: Path
    version: int = 1  # a changed result after the report was issued makes the next version
    changes_csv: Path | None = None


def period_of(kind: str, day: str) -> Period:
    date = datetime.date.fromisoformat(day)
    if kind == "week":
        monday = date - datetime.timedelta(days=date.weekday())
        year, week, _ = monday.isocalendar()
        sunday = monday + datetime.timedelta(days=6)
        return Period(kind, f"{year}-W{week:02d}", monday.isoformat(), sunday.isoformat())
    if kind == "month":
        first = date.replace(day=1)
        following = (first + datetime.timedelta(days=32)).replace(day=1)
        return Period(kind, first.strftime("%Y-%m"), first.isoformat(),
                      (following - datetime.timedelta(days=1)).isoformat())
    raise ValueError(f"period must be one of {', '.join(PERIODS)}")


def previous(period: Period) -> Period:
    before = datetime.date.fromisoformat(period.first) - datetime.timedelta(days=1)
    return period_of(period.kind, before.isoformat())


def ranked(rows: Sequence[Mapping[str, Any]], key: str, appeals: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One line per agent (or team) with its rank: best mean score first, then fewer fatal, then the id."""
    lines = [{key: name, **kpi.summarise(group, appeals=appeals)} for name, group in kpi.group_by(rows, key).items()]
    lines.sort(key=lambda r: (-(r["mean_score"] or 0), r["fatal"], str(r[key])))
    for rank, line in enumerate(lines, 1):
        line["rank"] = rank
    return lines


def with_change(now: list[dict[str, Any]], before: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    earlier = {str(r[key]): r for r in before}
    for line in now:
        old = earlier.get(str(line[key]))
        line["previous_mean_score"] = old["mean_score"] if old else None
        line["previous_rank"] = old["rank"] if old else None
        both = old is not None and line["mean_score"] is not None and old["mean_score"] is not None
        line["mean_score_change"] = round(line["mean_score"] - old["mean_score"], 3) if both and old else None
        line["rank_change"] = old["rank"] - line["rank"] if old else None  # + climbed, − fell
    return now


def _label(column: str, lang: str) -> str:
    return WORDS[lang].get(column) or header(column, lang)


def _csv(lines: Sequence[Mapping[str, Any]], key: str, lang: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = ("rank", key, *COLUMNS, "previous_mean_score", "mean_score_change", "previous_rank", "rank_change")
    writer.writerow([_label(c, lang) for c in columns])
    for line in lines:
        writer.writerow(["" if line.get(c) is None else line[c] for c in columns])
    return out.getvalue()


def _table(lines: Sequence[Mapping[str, Any]], key: str, lang: str) -> str:
    columns = ("rank", key, "mean_score", "mean_score_change", "rank_change", "conversations", "fatal",
               "reply_rate", "first_response_mean_s")
    head = "".join(f"<th>{html.escape(_label(c, lang))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_change(r.get(c)) if c.endswith('_change') else _number(r.get(c), c)}"
                                    "</td>" for c in columns) + "</tr>" for r in lines)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _change(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:+.1f}" if isinstance(value, float) else f"{value:+d}"


def _overall(now: Mapping[str, Any], before: Mapping[str, Any], lang: str) -> str:
    words = WORDS[lang]
    rows = []
    for column in ("conversations", "mean_score", "fatal", "reply_rate", "first_response_mean_s"):
        a, b = now.get(column), before.get(column)
        delta = "—"
        if isinstance(a, int | float) and isinstance(b, int | float):
            diff = (a - b) * (100 if column.endswith("_rate") else 1)
            delta = f"{diff:+.1f}" + (" pp" if column.endswith("_rate") else "") if isinstance(diff, float) \
                else f"{diff:+d}"
        rows.append(f"<tr><td>{html.escape(header(column, lang))}</td><td>{_number(a, column)}</td>"
                    f"<td>{_number(b, column)}</td><td>{delta}</td></tr>")
    head = "".join(f"<th>{words[k]}</th>" for k in ("metric", "this", "before", "delta"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def run_period_rollup(store: Database, kind: str, day: str, out_dir: Path, *, lang: str = "zh",
                      allow_empty: bool = False, reason: str = "rollup") -> PeriodFiles:
    period = period_of(kind, day)
    if lang not in WORDS:
        raise ValueError(f"lang must be one of {', '.join(WORDS)}")
    store.upgrade()
    earlier = previous(period)
    rows = store.scores.between(period.first, period.last)
    if not rows and not allow_empty:
        raise EmptyDay(f"no scored conversation in {period.name} ({period.first} – {period.last}); nothing written")
    old_rows = store.scores.between(earlier.first, earlier.last)
    appeals, old_appeals = (store.appeals.between(period.first, period.last),
                            store.appeals.between(earlier.first, earlier.last))
    agents = with_change(ranked(rows, "agent_id", appeals), ranked(old_rows, "agent_id", old_appeals), "agent_id")
    teams = with_change(ranked(rows, "team_id", appeals), ranked(old_rows, "team_id", old_appeals), "team_id")
    now = kpi.summarise(rows) if rows else {"conversations": 0}
    before = kpi.summarise(old_rows) if old_rows else {"conversations": 0}
    versions = store.report_versions
    snapshot = snapshot_of(rows, agents)
    version, changes, new = versions.next_version(kind, period.name, snapshot)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = PeriodFiles(out_dir / f"agents-{period.name}.csv", out_dir / f"teams-{period.name}.csv",
                        out_dir / f"report-{period.name}.html", version,
                        out_dir / f"changes-{period.name}-v{version}.csv" if version > 1 else None)
    contents = {files.agents_csv.name: _csv(agents, "agent_id", lang),
                files.teams_csv.name: _csv(teams, "team_id", lang)}
    if files.changes_csv is not None:
        contents[files.changes_csv.name] = changes_csv(changes, lang)
    for name, content in contents.items():
        (out_dir / name).write_text(content, encoding="utf-8-sig")
    words = WORDS[lang]
    title = f"{words[kind]} · {period.name} ({period.first} – {period.last})"
    version_word = ("第 {n} 版" if lang == "zh" else "version {n}").format(n=version)
    report = f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>
<style>body{{font-family:"Noto Sans CJK SC","PingFang SC",sans-serif;margin:1rem;color:#111;max-width:75rem}}
.wide{{overflow-x:auto}}table{{border-collapse:collapse;margin:.5rem 0 1.5rem}}td,th{{border:1px solid #ccc;
padding:.2rem .5rem;font-size:13px;text-align:right;white-space:nowrap}}th{{background:#f3f3f3}}</style></head>
<body><h1>{html.escape(title)} · {version_word}</h1>
{changes_html(version, changes, lang)}
<h2>{words['overall']} ({html.escape(earlier.name)})</h2>{_overall(now, before, lang)}
<h2>{words['teams']}</h2>{_table(teams, "team_id", lang)}
<h2>{words['agents']}</h2>{_table(agents, "agent_id", lang)}
</body></html>
"""
    files.report_html.write_text(report, encoding="utf-8")
    if new:
        versions.record(kind, period.name, period.first, period.last, version, reason=reason, snapshot=snapshot,
                        changes=changes, files={**contents, files.report_html.name: report})
    return files
