"""``zhijian detect`` and ``zhijian eval``: the detectors from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO

from detectors import RuleBook, load_ruleset
from detectors.evaluation import (
    DATA_DIR,
    evaluate_conversations,
    evaluate_utterances,
    format_corpus_report,
    format_scores,
    read_jsonl,
    scan_corpus,
)
from detectors.ruleset import labels_of


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    detect = sub.add_parser("detect", help="JSON lines {sender, text} on stdin → labels and findings on stdout")
    detect.add_argument("--rules", type=Path, default=None, help="rule set file (TOML or JSON; default: seed)")
    detect.add_argument("--shop", default=None, help="apply this shop's overrides")
    evaluate = sub.add_parser("eval", help="precision and recall per label, and a false-positive scan of JDDC")
    evaluate.add_argument("--rules", type=Path, default=None)
    evaluate.add_argument("--data", type=Path, default=DATA_DIR, help="folder with eval_*.jsonl")
    evaluate.add_argument("--jddc", type=Path, default=None, help="JDDC chat file (default: ../shared/... if present)")
    evaluate.add_argument("--no-jddc", action="store_true", help="skip the false-positive scan")
    evaluate.add_argument("--verbose", action="store_true", help="list every false positive and miss")
    rollup = sub.add_parser("rollup", help="the nightly KPI report (CSV + HTML) and review sample for one day")
    rollup.add_argument("--date", default=None,
                        help="the floor's local day, YYYY-MM-DD (default: yesterday in the floor's timezone)")
    rollup.add_argument("--out", type=Path, default=None, help="output folder (default: $ZHIJIAN_DATA_DIR/reports)")
    rollup.add_argument("--xlsx", action="store_true", help="also write report-<day>.xlsx (坐席, 班组, 抽检样本)")
    rollup.add_argument("--lang", choices=("zh", "en"), default="zh", help="CSV headers and report language")
    rollup.add_argument("--period", choices=("day", "week", "month"), default="day",
                        help="week (Monday–Sunday) or month: ranked rollup of the period holding --date, with "
                             "the change against the previous period")
    rollup.add_argument("--sample-cap", type=int, default=3, metavar="N",
                        help="review sample: at most N conversations per agent and day (default 3)")
    rollup.add_argument("--allow-empty", action="store_true",
                        help="write the files even if the day has no scored conversation and no alert")


def detect_lines(book: RuleBook, shop: str | None, lines: IO[str], out: IO[str]) -> int:
    """One output line per input line, in order. A bad line yields {"error": ...}, never a crash."""
    errors = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            sender, text = item["sender"], item["text"]
            if sender not in ("agent", "customer") or not isinstance(text, str):
                raise ValueError('"sender" must be "agent" or "customer" and "text" a string')
        except (ValueError, KeyError, TypeError) as exc:
            errors += 1
            out.write(json.dumps({"line": number, "error": f"{type(exc).__name__}: {exc}"}, ensure_ascii=False))
            out.write("\n")
            continue
        findings = book.detect(text, sender, item.get("shop_id", shop))
        result = {"labels": labels_of(findings), "findings": [f.as_dict() for f in findings],
                  "ruleset": book.ruleset.version}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()
    return errors


def cmd_detect(args: argparse.Namespace) -> int:
    book = RuleBook(load_ruleset(args.rules))
    errors = detect_lines(book, args.shop, sys.stdin, sys.stdout)
    return 1 if errors else 0


def cmd_eval(args: argparse.Namespace) -> int:
    from zhijian.core.corpus import jddc_path, read_jddc

    book = RuleBook(load_ruleset(args.rules))
    utterances = read_jsonl(args.data / "eval_utterances.jsonl")
    scores = evaluate_utterances(utterances, book)
    text = format_scores(scores, f"messages: {len(utterances)} labelled utterances, rule set {book.ruleset.version}")
    print(text if args.verbose else text.split("\n  ")[0])
    holdout_file = args.data / "eval_holdout.jsonl"
    if holdout_file.exists():  # written after the rules, never tuned against: the honest figure
        holdout = read_jsonl(holdout_file)
        text = format_scores(evaluate_utterances(holdout, book), f"\nheld-out messages: {len(holdout)} utterances")
        print(text if args.verbose else text.split("\n  ")[0])
    conversations_file = args.data / "eval_conversations.jsonl"
    if conversations_file.exists():
        conversations = read_jsonl(conversations_file)
        text = format_scores(evaluate_conversations(conversations, book),
                             f"\nconversations: {len(conversations)} labelled conversations")
        print(text if args.verbose else text.split("\n  ")[0])
    path = args.jddc or jddc_path()
    if not args.no_jddc:
        if path.exists():
            print()
            print(format_corpus_report(scan_corpus(read_jddc(path), book), str(path)))
        else:
            print(f"\n(no JDDC corpus at {path}: false-positive scan skipped)")
    return 0


def cmd_rollup(args: argparse.Namespace) -> int:
    import datetime

    from detectors.rubric import rubric_of
    from zhijian.core.settings import Settings
    from zhijian.kafka.rules import initial_ruleset
    from zhijian.reports.rollup import EmptyDay, floor_yesterday, run_rollup
    from zhijian.store.app import AppStore

    if args.date is not None:
        try:
            datetime.date.fromisoformat(args.date)
        except ValueError:
            print(f"--date must be YYYY-MM-DD, got {args.date!r}", file=sys.stderr)
            return 2
    if args.sample_cap < 0:
        print("--sample-cap must be 0 or more", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    store = AppStore(settings.database_url)
    try:
        ruleset = initial_ruleset(store)
        rubric = rubric_of(ruleset.rubric or load_ruleset().rubric)
        day = args.date or floor_yesterday(rubric)
        if args.period != "day":
            from zhijian.reports.period import run_period_rollup

            period = run_period_rollup(store, args.period, day, args.out or settings.data_dir / "reports",
                                       lang=args.lang, allow_empty=args.allow_empty)
            for path in (period.agents_csv, period.teams_csv, period.report_html):
                print(path)
            return 0
        files = run_rollup(store, day, args.out or settings.data_dir / "reports", rubric, lang=args.lang,
                           sample_cap=args.sample_cap, allow_empty=args.allow_empty)
    except EmptyDay as exc:
        print(f"warning: {exc}; check --date and DATABASE_URL, or pass --allow-empty", file=sys.stderr)
        return 3
    finally:
        store.dispose()
    for path in (files.agents_csv, files.teams_csv, files.sample_csv, files.report_html):
        print(path)
    if args.xlsx:
        from zhijian.reports.xlsx import rollup_workbook

        print(rollup_workbook(files.agents_csv, files.teams_csv, files.sample_csv,
                              files.report_html.with_name(f"report-{day}.xlsx")))
    return 0
