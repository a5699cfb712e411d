"""``zhijian rollup --date YYYY-MM-DD``: the nightly KPI report and the day's review sample.

Writes, for the floor's local day: ``agents-<day>.csv``, ``teams-<day>.csv``,
``review-sample-<day>.csv`` and a self-contained ``report-<day>.html`` (inline SVG charts, no
scripts, no network). Nothing in the output depends on when it runs, so re-running a date
gives byte-identical files; the review sample in SQL is replaced, not appended.
"""

from __future__ import annotations

import csv
import datetime
import html
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectors.rubric import Rubric
from zhijian import kpi
from zhijian.claims import ClaimStore
from zhijian.quality_store import samples_for, save_samples
from zhijian.sampling import full_marks_agents, sample_day
from zhijian.scoring import AGENT_LABELS, CONVERSATION_LABELS

LABEL_COLUMNS = (*AGENT_LABELS, *CONVERSATION_LABELS)
KPI_COLUMNS = ("conversations", "messages", "first_response_mean_s", "first_response_p90_s", "avg_response_s",
               "reply_rate", "waiting_alerts", "politeness_rate", "mean_score", "fatal", "appeals_opened",
               "appeals_accepted", "alerts_claimed", "alerts_resolved", "alerts_false_positive")


@dataclass(frozen=True)
class RollupFiles:
    agents_csv: Path
    teams_csv: Path
    sample_csv: Path
    report_html: Path


def _csv(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([key, *KPI_COLUMNS, *LABEL_COLUMNS])
    for row in rows:
        writer.writerow([row[key], *("" if row[c] is None else row[c] for c in KPI_COLUMNS),
                         *(row["labels"].get(label, 0) for label in LABEL_COLUMNS)])
    return out.getvalue()


def _bars(items: Sequence[tuple[str, float]], maximum: float, unit: str, colour: str) -> str:
    """A horizontal bar chart as inline SVG."""
    height = 22 * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="{height}" role="img">']
    for index, (name, value) in enumerate(items):
        y = 5 + index * 22
        width = 0 if maximum <= 0 else round(440 * value / maximum, 1)
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{html.escape(name)}</text>'
                     f'<rect x="140" y="{y + 3}" width="{width}" height="15" fill="{colour}"/>'
                     f'<text x="{146 + width}" y="{y + 15}" font-size="12">{value:g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _hour_columns(counts: Mapping[int, int]) -> str:
    """Alerts by local hour, 24 columns as inline SVG."""
    top = max(counts.values(), default=0)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="640" height="170" role="img">']
    for hour in range(24):
        value = counts.get(hour, 0)
        height = 0 if top == 0 else round(130 * value / top, 1)
        x = 10 + hour * 26
        parts.append(f'<rect x="{x}" y="{140 - height}" width="20" height="{height}" fill="#e5484d"/>'
                     f'<text x="{x + 10}" y="158" font-size="11" text-anchor="middle">{hour}</text>')
        if value:
            parts.append(f'<text x="{x + 10}" y="{136 - height}" font-size="10" text-anchor="middle">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (key, *KPI_COLUMNS))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str('' if r[c] is None else r[c]))}</td>"
                                    for c in (key, *KPI_COLUMNS)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _report(day: str, agents: Sequence[Mapping[str, Any]], teams: Sequence[Mapping[str, Any]],
            alerts_by_hour: Mapping[int, int], sample: Sequence[Mapping[str, Any]]) -> str:
    scored = [(str(a["agent_id"]), float(a["mean_score"] or 0)) for a in agents]
    reasons = Counter(reason for s in sample for reason in s["reasons"])
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>质检日报 {day}</title>
<style>body{{font-family:"Noto Sans CJK SC","PingFang SC",sans-serif;margin:2rem;color:#111}}
table{{border-collapse:collapse;margin:.5rem 0 1.5rem}}td,th{{border:1px solid #ccc;padding:.2rem .5rem;
font-size:13px;text-align:right}}th{{background:#f3f3f3}}td:first-child{{text-align:left}}</style></head>
<body><h1>质检日报 · {day}</h1>
<h2>坐席平均得分 (per-agent mean score)</h2>{_bars(scored, 100, "", "#3e9ef5")}
<h2>告警时段分布 (alerts by hour)</h2>{_hour_columns(alerts_by_hour)}
<h2>坐席 (agents)</h2>{_table(agents, "agent_id")}
<h2>班组 (teams)</h2>{_table(teams, "team_id")}
<h2>抽检样本 (review sample)</h2><p>{len(sample)} conversations: {html.escape(", ".join(
        f"{k} {v}" for k, v in sorted(reasons.items())))}</p>
</body></html>
"""


def _with_actions(rows: list[dict[str, Any]], key: str, acted: Sequence[Mapping[str, Any]]) -> None:
    """What floor leads did about the day's alerts (claim → resolve / false positive), per row."""
    for row in rows:
        mine = [a for a in acted if str(a.get(key) or "—") == str(row[key])]
        row["alerts_claimed"] = len(mine)
        row["alerts_resolved"] = sum(1 for a in mine if a["state"] == "resolved")
        row["alerts_false_positive"] = sum(1 for a in mine if a["state"] == "false_positive")


def run_rollup(store: ClaimStore, day: str, out_dir: Path, rubric: Rubric) -> RollupFiles:
    datetime.date.fromisoformat(day)  # a clear error for a bad date
    store.create_schema()
    rows = store.scored_rows(day)
    waiting = store.waiting_alert_counts([r["conversation_id"] for r in rows])
    appeals = store.appeals_between(day, day)
    agents = kpi.scoreboard(rows, waiting_alerts=waiting, appeals=appeals)
    agents.sort(key=lambda a: str(a["agent_id"]))
    teams = [{"team_id": team, **kpi.summarise(group, waiting_alerts=waiting, appeals=appeals)}
             for team, group in kpi.group_by(rows, "team_id").items()]
    start = datetime.datetime.combine(datetime.date.fromisoformat(day), datetime.time(), rubric.zone)
    start_ms = int(start.timestamp() * 1000)
    alerts_by_hour = Counter(rubric.local(ts).hour for _, ts in store.alert_times(start_ms, start_ms + 86_400_000))
    acted = store.action_counts(start_ms, start_ms + 86_400_000)
    _with_actions(agents, "agent_id", acted)
    _with_actions(teams, "team_id", acted)

    month_start = day[:8] + "01"
    earlier = [s for d in _days(month_start, day)[:-1] for s in samples_for(store, d)]
    taken = Counter(str(s["agent_id"]) for s in earlier if "reduced_monthly" in s["reasons"])
    sample = sample_day(day, rows, reduced=full_marks_agents(day, store.rows_between), taken_this_month=taken)
    save_samples(store, day, sample)

    out_dir.mkdir(parents=True, exist_ok=True)
    files = RollupFiles(out_dir / f"agents-{day}.csv", out_dir / f"teams-{day}.csv",
                        out_dir / f"review-sample-{day}.csv", out_dir / f"report-{day}.html")
    files.agents_csv.write_text(_csv(agents, "agent_id"), encoding="utf-8")
    files.teams_csv.write_text(_csv(teams, "team_id"), encoding="utf-8")
    sample_out = io.StringIO()
    writer = csv.writer(sample_out, lineterminator="\n")
    writer.writerow(["conversation_id", "agent_id", "reasons"])
    for s in sample:
        writer.writerow([s["conversation_id"], s["agent_id"], ";".join(s["reasons"])])
    files.sample_csv.write_text(sample_out.getvalue(), encoding="utf-8")
    files.report_html.write_text(_report(day, agents, teams, alerts_by_hour, sample), encoding="utf-8")
    return files


def _days(first: str, last: str) -> list[str]:
    start, end = datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
    return [(start + datetime.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
