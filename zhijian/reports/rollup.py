"""``zhijian rollup [--date YYYY-MM-DD]``: the nightly KPI report and the day's review sample.

Writes, for the floor's local day (default: yesterday on the floor's clock): ``agents-<day>.csv``,
``teams-<day>.csv``, ``review-sample-<day>.csv`` (UTF-8 with a BOM, Chinese headers, or English
with ``lang="en"``) and a self-contained ``report-<day>.html`` (inline SVG charts, no scripts, no
network; section means and the change from the day before). A day without any data is refused
(``EmptyDay``) unless allowed. Nothing in the output depends on when it runs, so re-running a date
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
from zhijian.scoring import AGENT_LABELS, CONVERSATION_LABELS, kpi
from zhijian.scoring.sampling import full_marks_agents, sample_day
from zhijian.store.claims import ClaimStore
from zhijian.store.quality import samples_for, save_samples
from zhijian.store.review import ReviewStore

LABEL_COLUMNS = (*AGENT_LABELS, *CONVERSATION_LABELS)
KPI_COLUMNS = ("conversations", "messages", "first_response_mean_s", "first_response_p90_s", "avg_response_s",
               "inquiries", "answered_inquiries", "reply_rate", "waiting_alerts", "politeness_rate", "mean_score",
               "fatal", "appeals_opened",
               "appeals_accepted", "alerts_claimed", "alerts_resolved", "alerts_false_positive")
SAMPLE_CAP = 3  # conversations QA reviews per agent and day
# the review sample's priority when an agent's picks exceed the cap (seed rules): a finding first, then the
# too short / too long, then a finding's neighbours, then the random picks
REASON_PRIORITY = {"has_finding": 0, "shorter_than_20s": 1, "longer_than_200s": 1, "before_a_finding": 2,
                   "after_a_finding": 2, "random_1pct": 3, "reduced_monthly": 3}

HEADERS = {
    "zh": {"agent_id": "坐席", "team_id": "班组", "conversations": "会话数", "messages": "消息数",
           "first_response_mean_s": "平均首响（秒）", "first_response_p90_s": "首响P90（秒）",
           "avg_response_s": "平响（秒）", "reply_rate": "回复率", "inquiries": "咨询人数",
           "answered_inquiries": "回复人数", "waiting_alerts": "等待告警数",
           "politeness_rate": "礼貌用语使用率", "mean_score": "平均分", "fatal": "致命项会话数",
           "appeals_opened": "申诉数", "appeals_accepted": "申诉通过数", "alerts_claimed": "告警认领数",
           "alerts_resolved": "告警已处理数", "alerts_false_positive": "告警误报数", "conversation_id": "会话",
           "reasons": "抽检原因", "label": "问题·{name}", "section": "分项·{name}"},
    "en": {"label": "label_{name}", "section": "section_{name}"},
}
LABEL_NAMES = {
    "zh": {"banned_word": "语气词不当", "impolite_address": "称呼不当（你/您）", "forbidden_phrase": "服务禁语",
           "conflict": "与顾客争执", "deflection": "推诿", "pii_leak": "泄露顾客隐私", "missing_greeting": "缺开头语",
           "missing_closing": "缺结束语", "politeness_rate": "礼貌用语不足", "unanswered_at_end": "漏回复"},
    "en": {},
}
SECTION_NAMES = {"en": {"服务态度": "attitude", "服务用语": "language", "响应时效": "responsiveness",
                        "流程规范": "procedure"}}
REASONS = {
    "zh": {"has_finding": "有质检问题", "shorter_than_20s": "时长不足20秒", "longer_than_200s": "时长超过200秒",
           "before_a_finding": "问题会话的前一通", "after_a_finding": "问题会话的后一通",
           "random_1pct": "随机抽取（1%）", "reduced_monthly": "连续两月满分·每月抽检"},
    "en": {"has_finding": "has a finding", "shorter_than_20s": "shorter than 20 s",
           "longer_than_200s": "longer than 200 s", "before_a_finding": "before a finding",
           "after_a_finding": "after a finding", "random_1pct": "random 1%",
           "reduced_monthly": "two full-mark months: monthly pick"},
}


class EmptyDay(ValueError):
    """Nothing was scored and no alert was raised on the day: most likely the wrong day or database."""


@dataclass(frozen=True)
class RollupFiles:
    agents_csv: Path
    teams_csv: Path
    sample_csv: Path
    report_html: Path


def header(column: str, lang: str) -> str:
    return HEADERS.get(lang, {}).get(column, column)


def label_header(label: str, lang: str) -> str:
    return header("label", lang).format(name=LABEL_NAMES.get(lang, {}).get(label, label))


def section_header(section: str, lang: str) -> str:
    return header("section", lang).format(name=SECTION_NAMES.get(lang, {}).get(section, section))


def reason_text(reason: str, lang: str) -> str:
    return REASONS.get(lang, REASONS["en"]).get(reason, reason)


def floor_yesterday(rubric: Rubric, now: datetime.datetime | None = None) -> str:
    """The day the nightly rollup reports by default: yesterday on the floor's clock, wherever it runs
    (at 17:30 UTC it is already tomorrow in Shanghai, so "yesterday" there is today's UTC date)."""
    moment = now if now is not None else datetime.datetime.now(datetime.UTC)
    return (moment.astimezone(rubric.zone).date() - datetime.timedelta(days=1)).isoformat()


def cap_sample(sample: Sequence[Mapping[str, Any]], per_agent: int) -> list[dict[str, Any]]:
    """At most ``per_agent`` conversations per agent, the highest-priority reasons first (ties: the
    conversation id, so the same day always gives the same sample)."""
    kept: list[dict[str, Any]] = []
    by_agent: dict[str, list[Mapping[str, Any]]] = {}
    for entry in sample:
        by_agent.setdefault(str(entry["agent_id"]), []).append(entry)
    for _agent, entries in sorted(by_agent.items()):
        ranked = sorted(entries, key=lambda e: (min(REASON_PRIORITY.get(r, 9) for r in e["reasons"]),
                                                str(e["conversation_id"])))
        kept.extend(dict(e) for e in ranked[:max(0, per_agent)])
    return sorted(kept, key=lambda p: (str(p["agent_id"]), p["conversation_id"]))


def _sections(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for name in row.get("sections") or {}:
            if name not in names:
                names.append(name)
    return names


def _csv(rows: Sequence[Mapping[str, Any]], key: str, lang: str, sections: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = [header(key, lang), *(header(c, lang) for c in KPI_COLUMNS),
               *(section_header(s, lang) for s in sections), *(label_header(label, lang) for label in LABEL_COLUMNS)]
    if len(set(columns)) != len(columns):  # a spreadsheet keeps only one of two equal headers
        raise ValueError(f"duplicate columns: {columns}")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[key], *("" if row[c] is None else row[c] for c in KPI_COLUMNS),
                         *("" if (row.get("sections") or {}).get(s) is None else row["sections"][s] for s in sections),
                         *(row["labels"].get(label, 0) for label in LABEL_COLUMNS)])
    return out.getvalue()


def _bars(items: Sequence[tuple[str, float]], maximum: float, unit: str, colour: str) -> str:
    """A horizontal bar chart as inline SVG."""
    height = 22 * len(items) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="{height}" viewBox="0 0 640 {height}" '
             'role="img">']
    for index, (name, value) in enumerate(items):
        y = 5 + index * 22
        width = 0 if maximum <= 0 else round(440 * value / maximum, 1)
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{html.escape(name)}</text>'
                     f'<rect x="140" y="{y + 3}" width="{width}" height="15" fill="{colour}"/>'
                     f'<text x="{146 + width}" y="{y + 15}" font-size="12">{value:.1f}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _hour_columns(counts: Mapping[int, int]) -> str:
    """Alerts by local hour, 24 columns as inline SVG."""
    top = max(counts.values(), default=0)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="640" height="170" viewBox="0 0 640 170" role="img">']
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


TEXT = {
    "zh": {"title": "质检日报", "scores": "坐席平均得分", "by_hour": "告警时段分布", "agents": "坐席", "teams": "班组",
           "sections": "分项得分（均分）", "change": "与前一日对比", "sample": "抽检样本",
           "sample_line": "共 {n} 通会话（每位坐席每天最多 {cap} 通）：{reasons}", "metric": "指标", "today": "当日",
           "previous": "前一日", "delta": "变化", "alerts": "告警数", "none": "无"},
    "en": {"title": "QA daily report", "scores": "Mean score per agent", "by_hour": "Alerts by hour",
           "agents": "Agents", "teams": "Teams", "sections": "Section means", "change": "Day on day",
           "sample": "Review sample", "sample_line": "{n} conversations (at most {cap} per agent and day): {reasons}",
           "metric": "Metric", "today": "This day", "previous": "Day before", "delta": "Change", "alerts": "Alerts",
           "none": "none"},
}


def _number(value: Any, column: str = "") -> str:
    """One decimal for figures, a percentage for rates, counts as they are."""
    if value is None or value == "":
        return "—"
    if column.endswith("_rate") and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return html.escape(str(value))


def _table(rows: Sequence[Mapping[str, Any]], key: str, lang: str) -> str:
    head = "".join(f"<th>{html.escape(header(c, lang))}</th>" for c in (key, *KPI_COLUMNS))
    body = "".join("<tr>" + f"<td>{html.escape(str(r[key]))}</td>"
                   + "".join(f"<td>{_number(r[c], c)}</td>" for c in KPI_COLUMNS) + "</tr>" for r in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _section_table(rows: Sequence[Mapping[str, Any]], key: str, sections: Sequence[str], lang: str) -> str:
    names = [SECTION_NAMES.get(lang, {}).get(s, s) for s in sections]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in (header(key, lang), *names))
    body = "".join("<tr>" + f"<td>{html.escape(str(r[key]))}</td>"
                   + "".join(f"<td>{_number((r.get('sections') or {}).get(s))}</td>" for s in sections) + "</tr>"
                   for r in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _change_table(today: Mapping[str, Any], before: Mapping[str, Any], lang: str) -> str:
    words = TEXT[lang]
    lines = []
    for column, name in (("conversations", header("conversations", lang)), ("mean_score", header("mean_score", lang)),
                         ("fatal", header("fatal", lang)), ("alerts", words["alerts"]),
                         ("first_response_mean_s", header("first_response_mean_s", lang)),
                         ("reply_rate", header("reply_rate", lang))):
        now, then = today.get(column), before.get(column)
        if isinstance(now, int | float) and isinstance(then, int | float):
            diff = (now - then) * (100 if column.endswith("_rate") else 1)
            unit = " pp" if column.endswith("_rate") else ""
            delta = f"{diff:+.1f}{unit}" if isinstance(diff, float) or unit else f"{diff:+d}"
        else:
            delta = "—"
        lines.append(f"<tr><td>{html.escape(name)}</td><td>{_number(now, column)}</td><td>{_number(then, column)}</td>"
                     f"<td>{delta}</td></tr>")
    head = "".join(f"<th>{words[k]}</th>" for k in ("metric", "today", "previous", "delta"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _report(day: str, agents: Sequence[Mapping[str, Any]], teams: Sequence[Mapping[str, Any]],
            alerts_by_hour: Mapping[int, int], sample: Sequence[Mapping[str, Any]], *, lang: str, cap: int,
            today: Mapping[str, Any], before: Mapping[str, Any]) -> str:
    words = TEXT[lang]
    scored = [(str(a["agent_id"]), round(float(a["mean_score"] or 0), 1)) for a in agents]
    reasons = Counter(reason for s in sample for reason in s["reasons"])
    reason_line = "，".join(f"{reason_text(k, lang)} {v}" for k, v in sorted(reasons.items())) or words["none"]
    sections = _sections([*agents, *teams])
    return f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{words['title']} {day}</title>
<style>body{{font-family:"Noto Sans CJK SC","PingFang SC",sans-serif;margin:1rem;color:#111;max-width:75rem}}
.wide{{overflow-x:auto}}svg{{max-width:100%;height:auto}}
table{{border-collapse:collapse;margin:.5rem 0 1.5rem}}td,th{{border:1px solid #ccc;padding:.2rem .5rem;
font-size:13px;text-align:right;white-space:nowrap}}th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}
</style></head>
<body><h1>{words['title']} · {day}</h1>
<h2>{words['change']}</h2>{_change_table(today, before, lang)}
<h2>{words['scores']}</h2>{_bars(scored, 100, "", "#1a5fb4")}
<h2>{words['by_hour']}</h2>{_hour_columns(alerts_by_hour)}
<h2>{words['teams']}</h2>{_table(teams, "team_id", lang)}
<h2>{words['agents']}</h2>{_table(agents, "agent_id", lang)}
<h2>{words['sections']}</h2>{_section_table(teams, "team_id", sections, lang)}{_section_table(agents, "agent_id",
                                                                                            sections, lang)}
<h2>{words['sample']}</h2><p>{html.escape(words['sample_line'].format(n=len(sample), cap=cap, reasons=reason_line))}</p>
</body></html>
"""


def _with_actions(rows: list[dict[str, Any]], key: str, acted: Sequence[Mapping[str, Any]]) -> None:
    """What floor leads did about the day's alerts (claim → resolve / false positive), per row."""
    for row in rows:
        mine = [a for a in acted if str(a.get(key) or "—") == str(row[key])]
        row["alerts_claimed"] = len(mine)
        row["alerts_resolved"] = sum(1 for a in mine if a["state"] == "resolved")
        row["alerts_false_positive"] = sum(1 for a in mine if a["state"] == "false_positive")


def _overall(store: ClaimStore, day: str, rubric: Rubric) -> dict[str, Any]:
    """The floor's figures for one day (the day-on-day comparison)."""
    rows = store.scored_rows(day)
    start_ms = _day_start_ms(day, rubric)
    figures = kpi.summarise(rows) if rows else {"conversations": 0}
    figures["alerts"] = len(store.alert_times(start_ms, start_ms + 86_400_000))
    return figures


def _day_start_ms(day: str, rubric: Rubric) -> int:
    start = datetime.datetime.combine(datetime.date.fromisoformat(day), datetime.time(), rubric.zone)
    return int(start.timestamp() * 1000)


def run_rollup(store: ClaimStore, day: str, out_dir: Path, rubric: Rubric, *, lang: str = "zh",
               sample_cap: int = SAMPLE_CAP, allow_empty: bool = False) -> RollupFiles:
    """Write the day's files. ``EmptyDay`` (nothing written) when the day has no scored conversation and
    no alert, unless ``allow_empty``: a nightly job on the wrong day or database must not publish zeros."""
    datetime.date.fromisoformat(day)  # a clear error for a bad date
    if lang not in TEXT:
        raise ValueError(f"lang must be one of {', '.join(TEXT)}")
    store.create_schema()
    rows = store.scored_rows(day)
    start_ms = _day_start_ms(day, rubric)
    alert_times = store.alert_times(start_ms, start_ms + 86_400_000)
    if not rows and not alert_times and not allow_empty:
        raise EmptyDay(f"no scored conversation and no alert on {day} ({rubric.timezone}); nothing written")
    waiting = store.waiting_alert_counts([r["conversation_id"] for r in rows])
    appeals = store.appeals_between(day, day)
    agents = kpi.scoreboard(rows, waiting_alerts=waiting, appeals=appeals)
    agents.sort(key=lambda a: str(a["agent_id"]))
    teams = [{"team_id": team, **kpi.summarise(group, waiting_alerts=waiting, appeals=appeals)}
             for team, group in kpi.group_by(rows, "team_id").items()]
    alerts_by_hour = Counter(rubric.local(ts).hour for _, ts in alert_times)
    acted = store.action_counts(start_ms, start_ms + 86_400_000)
    _with_actions(agents, "agent_id", acted)
    _with_actions(teams, "team_id", acted)
    previous = (datetime.date.fromisoformat(day) - datetime.timedelta(days=1)).isoformat()
    today = {**(kpi.summarise(rows) if rows else {"conversations": 0}), "alerts": len(alert_times)}
    before = _overall(store, previous, rubric)

    month_start = day[:8] + "01"
    earlier = [s for d in _days(month_start, day)[:-1] for s in samples_for(store, d)]
    taken = Counter(str(s["agent_id"]) for s in earlier if "reduced_monthly" in s["reasons"])
    sample = cap_sample(sample_day(day, rows, reduced=full_marks_agents(day, store.rows_between),
                                   taken_this_month=taken), sample_cap)
    save_samples(store, day, sample)
    if isinstance(store, ReviewStore):  # the report is the notice of the day's automatic results: appeal windows
        store.mark_published(day)       # run from its first publication; late appeal decisions are escalated
        store.escalate_late_appeals()

    out_dir.mkdir(parents=True, exist_ok=True)
    files = RollupFiles(out_dir / f"agents-{day}.csv", out_dir / f"teams-{day}.csv",
                        out_dir / f"review-sample-{day}.csv", out_dir / f"report-{day}.html")
    sections = _sections([*agents, *teams])
    # UTF-8 with a BOM: Excel on Chinese Windows reads Chinese names right only with it
    files.agents_csv.write_text(_csv(agents, "agent_id", lang, sections), encoding="utf-8-sig")
    files.teams_csv.write_text(_csv(teams, "team_id", lang, sections), encoding="utf-8-sig")
    sample_out = io.StringIO()
    writer = csv.writer(sample_out, lineterminator="\n")
    writer.writerow([header("conversation_id", lang), header("agent_id", lang), header("reasons", lang)])
    for s in sample:
        writer.writerow([s["conversation_id"], s["agent_id"],
                         ("；" if lang == "zh" else "; ").join(reason_text(r, lang) for r in sorted(
                             s["reasons"], key=lambda r: REASON_PRIORITY.get(r, 9)))])
    files.sample_csv.write_text(sample_out.getvalue(), encoding="utf-8-sig")
    files.report_html.write_text(_report(day, agents, teams, alerts_by_hour, sample, lang=lang, cap=sample_cap,
                                         today=today, before=before), encoding="utf-8")
    return files


def _days(first: str, last: str) -> list[str]:
    start, end = datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
    return [(start + datetime.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
