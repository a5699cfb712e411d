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
import dataclasses
import datetime
import html
import io
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectors import RuleBook, load_ruleset
from detectors.rubric import Rubric, Sampling
from zhijian.scoring import AGENT_LABELS, CONVERSATION_LABELS, kpi, rubric_lookup
from zhijian.scoring.sampling import (
    REASON_PRIORITY,
    LastMonth,
    last_month_of,
    previous_months,
    reduced_agents,
    sample_day,
)
from zhijian.scoring.sampling import cap_sample as cap_by_agent
from zhijian.store.database import Database
from zhijian.store.report_versions import snapshot_of

LABEL_COLUMNS = (*AGENT_LABELS, *CONVERSATION_LABELS)
KPI_COLUMNS = ("conversations", "messages", "first_response_mean_s", "first_response_p90_s", "avg_response_s",
               "inquiries", "answered_inquiries", "reply_rate", "waiting_alerts", "politeness_rate", "mean_score",
               "fatal", "appeals_opened",
               "appeals_accepted", "alerts_claimed", "alerts_resolved", "alerts_false_positive")
SAMPLE_CAP = 3  # conversations QA reviews per agent and day (the default of [rubric.sampling] cap)

HEADERS = {
    "zh": {"agent_id": "坐席", "team_id": "班组", "conversations": "会话数", "messages": "消息数",
           "first_response_mean_s": "平均首响（秒）", "first_response_p90_s": "首响P90（秒）",
           "avg_response_s": "平响（秒）", "reply_rate": "回复率", "inquiries": "咨询人数",
           "answered_inquiries": "回复人数", "waiting_alerts": "等待告警数",
           "politeness_rate": "礼貌用语使用率", "mean_score": "平均分", "fatal": "致命项会话数",
           "appeals_opened": "申诉数", "appeals_accepted": "申诉通过数", "alerts_claimed": "告警认领数",
           "alerts_resolved": "告警已处理数", "alerts_false_positive": "告警误报数", "conversation_id": "会话",
           "reasons": "抽检原因", "old_score": "原得分", "new_score": "新得分", "old_fatal": "原致命",
           "new_fatal": "新致命", "old_mean_score": "原平均分", "new_mean_score": "新平均分",
           "label": "问题·{name}", "section": "分项·{name}"},
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
    "zh": {"has_finding": "有质检问题", "critical_finding": "严重问题（自动检出）",
           "confirmed_finding": "复核确认的问题",
           "shorter_than_20s": "时长不足20秒", "longer_than_200s": "时长超过200秒（平响未达标日）",
           "before_a_finding": "问题会话的前一通", "after_a_finding": "问题会话的后一通",
           "random_1pct": "随机抽取（按比例）", "reduced_monthly": "连续两月满分·每月抽检"},
    "en": {"has_finding": "has a finding", "critical_finding": "critical finding (automatic)",
           "confirmed_finding": "finding confirmed in review", "shorter_than_20s": "shorter than 20 s",
           "longer_than_200s": "longer than 200 s (response target missed)", "before_a_finding": "before a finding",
           "after_a_finding": "after a finding", "random_1pct": "random share",
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
    version: int = 1  # of the day's report: a changed result after it was issued makes the next one
    changes_csv: Path | None = None  # what changed against the version before (version 2 on)


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
    return cap_by_agent(sample, lambda _agent: per_agent)


def changes_csv(changes: Mapping[str, Any], lang: str) -> str:
    """A version's "what changed": the conversations whose score moved, then the agents whose mean moved."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = ("conversation_id", "agent_id", "old_score", "new_score", "old_fatal", "new_fatal")
    writer.writerow([header(c, lang) for c in columns])
    for line in changes.get("conversations", []):
        writer.writerow(["" if line.get(c) is None else line[c] for c in columns])
    writer.writerow([])
    writer.writerow([header(c, lang) for c in ("agent_id", "old_mean_score", "new_mean_score")])
    for line in changes.get("agents", []):
        writer.writerow(["" if line.get(c) is None else line[c] for c in ("agent_id", "old_mean_score",
                                                                         "new_mean_score")])
    return out.getvalue()


VERSION_TEXT = {
    "zh": {"version": "第 {n} 版", "changed": "本版变更（相对第 {n} 版）", "conversation": "会话", "agent": "坐席",
           "old": "原", "new": "新", "score": "得分", "mean": "平均分", "fatal": "致命"},
    "en": {"version": "version {n}", "changed": "What changed (against version {n})", "conversation": "Conversation",
           "agent": "Agent", "old": "old", "new": "new", "score": "score", "mean": "mean score", "fatal": "fatal"},
}


def changes_html(version: int, changes: Mapping[str, Any], lang: str) -> str:
    """The "what changed" section of a re-issued report (empty for version 1)."""
    if version <= 1 or not changes:
        return ""
    words = VERSION_TEXT[lang]

    def cell(value: Any) -> str:
        return "—" if value is None else html.escape(f"{value:.1f}" if isinstance(value, float) else str(value))
    convs = "".join(f"<tr><td>{html.escape(str(c['conversation_id']))}</td><td>{cell(c['agent_id'])}</td>"
                    f"<td>{cell(c['old_score'])}{' ☠' if c['old_fatal'] else ''}</td>"
                    f"<td>{cell(c['new_score'])}{' ☠' if c['new_fatal'] else ''}</td></tr>"
                    for c in changes.get("conversations", []))
    agents = "".join(f"<tr><td>{cell(a['agent_id'])}</td><td>{cell(a['old_mean_score'])}</td>"
                     f"<td>{cell(a['new_mean_score'])}</td></tr>" for a in changes.get("agents", []))
    return (f'<section id="changes"><h2>{html.escape(words["changed"].format(n=version - 1))}</h2>'
            f'<table><thead><tr><th>{words["conversation"]}</th><th>{words["agent"]}</th>'
            f'<th>{words["old"]}{words["score"]}</th><th>{words["new"]}{words["score"]}</th></tr></thead>'
            f'<tbody>{convs}</tbody></table>'
            f'<table><thead><tr><th>{words["agent"]}</th><th>{words["old"]}{words["mean"]}</th>'
            f'<th>{words["new"]}{words["mean"]}</th></tr></thead><tbody>{agents}</tbody></table></section>')


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
            today: Mapping[str, Any], before: Mapping[str, Any], version: int = 1,
            changes: Mapping[str, Any] | None = None) -> str:
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
<body><h1>{words['title']} · {day} · {VERSION_TEXT[lang]['version'].format(n=version)}</h1>
{changes_html(version, changes or {}, lang)}
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


def _overall(store: Database, day: str, rubric: Rubric) -> dict[str, Any]:
    """The floor's figures for one day (the day-on-day comparison)."""
    rows = store.scores.of_day(day)
    start_ms = _day_start_ms(day, rubric)
    figures = kpi.summarise(rows) if rows else {"conversations": 0}
    figures["alerts"] = len(store.alerts.times(start_ms, start_ms + 86_400_000))
    return figures


def _day_start_ms(day: str, rubric: Rubric) -> int:
    start = datetime.datetime.combine(datetime.date.fromisoformat(day), datetime.time(), rubric.zone)
    return int(start.timestamp() * 1000)


def critical_labels(book: RuleBook, shop_id: str) -> frozenset[str]:
    """Labels whose rules are critical in the shop's rules (sampling rule 4: a problem worth its neighbours)."""
    return frozenset(rule.label for rule in book.detector(shop_id).ruleset.rules
                     if rule.enabled and rule.severity == "critical" and rule.label in AGENT_LABELS)


def sampling_of(rubric: Rubric) -> Sampling:
    """The shop's sampling settings with the response target resolved (default: its first 平均响应 tier)."""
    config = rubric.sampling
    if config.response_target_s is None and rubric.timing is not None and rubric.timing.avg_response_tiers:
        config = dataclasses.replace(config, response_target_s=float(rubric.timing.avg_response_tiers[0][0]))
    return config


def day_sample(store: Database, day: str, rows: Sequence[Mapping[str, Any]], *,
               rubric_for: Callable[[str], Rubric], book: RuleBook,
               sample_cap: int | None = None) -> list[dict[str, Any]]:
    """The day's review sample under each shop's ``[rubric.sampling]`` (see ``zhijian.scoring.sampling``)."""
    picks = store.picks
    month_start = day[:8] + "01"
    yesterday = (datetime.date.fromisoformat(day) - datetime.timedelta(days=1)).isoformat()
    before_today = yesterday >= month_start
    configs: dict[str, Sampling] = {}

    def config_for(shop: str) -> Sampling:
        if shop not in configs:
            configs[shop] = sampling_of(rubric_for(shop))
        return configs[shop]

    shops = {str(r.get("shop_id") or "") for r in rows}
    floor = config_for(sorted(shops)[0]) if shops else Sampling()  # the floor's reduced-sample settings
    reduced = reduced_agents(day, store.scores.between, floor,
                             lambda first, last: set(picks.picks_between(first, last, "reduced_monthly")))
    taken = picks.picks_between(month_start, yesterday, "reduced_monthly") if before_today else Counter()
    random_taken = picks.picks_between(month_start, yesterday, "random_1pct") if before_today else Counter()
    first, end = previous_months(day, 1)[0]
    last: dict[str, LastMonth] = last_month_of(store.scores.between(first, end))
    critical: dict[str, frozenset[str]] = {}

    def is_critical(row: Mapping[str, Any]) -> bool:
        shop = str(row.get("shop_id") or "")
        if shop not in critical:
            critical[shop] = critical_labels(book, shop)
        return bool(row.get("fatal")) or any(row["labels"].get(label) for label in critical[shop])

    agent_shop = {str(r.get("agent_id") or "—"): str(r.get("shop_id") or "") for r in rows}
    sample = sample_day(day, rows, config_for=config_for, reduced=reduced, taken_this_month=taken,
                        confirmed=picks.confirmed_conversations(day), critical=is_critical, last_month=last,
                        random_taken=random_taken)
    return cap_by_agent(sample, lambda agent: sample_cap if sample_cap is not None
                        else config_for(agent_shop.get(agent, "")).cap)


def run_rollup(store: Database, day: str, out_dir: Path, rubric: Rubric, *, lang: str = "zh",
               sample_cap: int | None = None, allow_empty: bool = False, book: RuleBook | None = None,
               resample: bool = True, reason: str = "rollup") -> RollupFiles:
    """Write the day's files. ``EmptyDay`` (nothing written) when the day has no scored conversation and
    no alert, unless ``allow_empty``: a nightly job on the wrong day or database must not publish zeros.
    ``sample_cap`` overrides the shops' ``[rubric.sampling] cap``; ``resample=False`` keeps the stored sample
    (a re-issue after a changed result must not reshuffle a queue QA is working through). The report is
    recorded as a version: the next one when any score moved since the last issue (with what changed)."""
    datetime.date.fromisoformat(day)  # a clear error for a bad date
    if lang not in TEXT:
        raise ValueError(f"lang must be one of {', '.join(TEXT)}")
    store.upgrade()
    versions = store.report_versions
    book = book or RuleBook(load_ruleset())
    lookup = rubric_lookup(book)
    rows = store.scores.of_day(day)
    start_ms = _day_start_ms(day, rubric)
    alert_times = store.alerts.times(start_ms, start_ms + 86_400_000)
    if not rows and not alert_times and not allow_empty:
        raise EmptyDay(f"no scored conversation and no alert on {day} ({rubric.timezone}); nothing written")
    waiting = store.alerts.waiting_counts([r["conversation_id"] for r in rows])
    appeals = store.appeals.between(day, day)
    agents = kpi.scoreboard(rows, waiting_alerts=waiting, appeals=appeals)
    agents.sort(key=lambda a: str(a["agent_id"]))
    teams = [{"team_id": team, **kpi.summarise(group, waiting_alerts=waiting, appeals=appeals)}
             for team, group in kpi.group_by(rows, "team_id").items()]
    alerts_by_hour = Counter(rubric.local(ts).hour for _, ts in alert_times)
    acted = store.claims.counts(start_ms, start_ms + 86_400_000)
    _with_actions(agents, "agent_id", acted)
    _with_actions(teams, "team_id", acted)
    previous = (datetime.date.fromisoformat(day) - datetime.timedelta(days=1)).isoformat()
    today = {**(kpi.summarise(rows) if rows else {"conversations": 0}), "alerts": len(alert_times)}
    before = _overall(store, previous, rubric)

    if resample:
        sample = day_sample(store, day, rows, rubric_for=lookup, book=book, sample_cap=sample_cap)
        store.samples.save(day, sample)
    else:
        sample = [{"conversation_id": s["conversation_id"], "agent_id": s["agent_id"], "reasons": s["reasons"]}
                  for s in store.samples.of_day(day)]
    cap = sample_cap if sample_cap is not None else sampling_of(rubric).cap
    # the report is the notice of the day's automatic results: appeal windows run from its first publication;
    # late appeal decisions are escalated
    store.appeals.mark_published(day)
    store.appeals.escalate_late()

    snapshot = snapshot_of(rows, agents)
    version, changes, new = versions.next_version("day", day, snapshot)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = RollupFiles(out_dir / f"agents-{day}.csv", out_dir / f"teams-{day}.csv",
                        out_dir / f"review-sample-{day}.csv", out_dir / f"report-{day}.html", version,
                        out_dir / f"changes-{day}-v{version}.csv" if version > 1 else None)
    sections = _sections([*agents, *teams])
    # UTF-8 with a BOM: Excel on Chinese Windows reads Chinese names right only with it
    contents = {files.agents_csv.name: _csv(agents, "agent_id", lang, sections),
                files.teams_csv.name: _csv(teams, "team_id", lang, sections)}
    sample_out = io.StringIO()
    writer = csv.writer(sample_out, lineterminator="\n")
    writer.writerow([header("conversation_id", lang), header("agent_id", lang), header("reasons", lang)])
    for s in sample:
        writer.writerow([s["conversation_id"], s["agent_id"],
                         ("；" if lang == "zh" else "; ").join(reason_text(r, lang) for r in sorted(
                             s["reasons"], key=lambda r: REASON_PRIORITY.get(r, 9)))])
    contents[files.sample_csv.name] = sample_out.getvalue()
    if files.changes_csv is not None:
        contents[files.changes_csv.name] = changes_csv(changes, lang)
    for name, content in contents.items():
        (out_dir / name).write_text(content, encoding="utf-8-sig")
    report = _report(day, agents, teams, alerts_by_hour, sample, lang=lang, cap=cap, today=today, before=before,
                     version=version, changes=changes)
    files.report_html.write_text(report, encoding="utf-8")
    if new:
        versions.record("day", day, day, day, version, reason=reason, snapshot=snapshot, changes=changes,
                        files={**contents, files.report_html.name: report})
    return files


def reissue_stale(store: Database, out_dir: Path, rubric: Rubric, *, book: RuleBook | None = None,
                  lang: str = "zh") -> list[tuple[str, str, int]]:
    """Produce again every report (day, its week, its month) covering a day whose results changed after it was
    issued: (kind, name, version) of each; a version is new only when something in it moved."""
    from zhijian.reports.period import period_of, run_period_rollup

    versions = store.report_versions
    stale = versions.stale_days()
    done: list[tuple[str, str, int]] = []
    seen: set[tuple[str, str]] = set()
    for entry in stale:
        day, why = entry["day"], entry["reason"]
        if versions.latest("day", day) is not None:
            files = run_rollup(store, day, out_dir, rubric, lang=lang, allow_empty=True, book=book, resample=False,
                               reason=why)
            done.append(("day", day, files.version))
        for kind in ("week", "month"):
            period = period_of(kind, day)
            if (kind, period.name) in seen or versions.latest(kind, period.name) is None:
                continue
            seen.add((kind, period.name))
            made = run_period_rollup(store, kind, day, out_dir, lang=lang, allow_empty=True, reason=why)
            done.append((kind, period.name, made.version))
    versions.clear_stale(e["day"] for e in stale)
    return done


def write_version(store: Database, kind: str, name: str, version: int, out_dir: Path) -> list[Path]:
    """An issued version's files as they were, each named with ``-v<N>`` before its extension."""
    found = store.report_versions.get(kind, name, version)
    if found is None:
        raise LookupError(f"no version {version} of the {kind} report {name}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file, content in sorted(found["files"].items()):
        stem, _, ext = file.rpartition(".")
        path = out_dir / (file if stem.endswith(f"-v{version}") else f"{stem}-v{version}.{ext}")
        path.write_text(content, encoding="utf-8" if ext == "html" else "utf-8-sig")
        written.append(path)
    return written


def _days(first: str, last: str) -> list[str]:
    start, end = datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
    return [(start + datetime.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
