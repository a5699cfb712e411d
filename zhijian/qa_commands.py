"""``zhijian detect``, ``zhijian eval`` and ``zhijian train``: the detectors from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO

from detectors import Detector, RuleBook, load_ruleset
from detectors.evaluation import (
    DATA_DIR,
    SPLITS,
    evaluate_conversations,
    evaluate_evasions,
    evaluate_lookalikes,
    evaluate_split,
    evaluate_utterances,
    format_corpus_report,
    format_scores,
    format_splits,
    read_jsonl,
    read_reviewed,
    read_split,
    scan_corpus,
)
from detectors.model import MODEL_PATH
from detectors.ruleset import LABELS, labels_of, parse_ruleset

INDOMAIN_DIR = DATA_DIR / "indomain"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    detect = sub.add_parser("detect", help="JSON lines {sender, text} on stdin → labels and findings on stdout")
    detect.add_argument("--rules", type=Path, default=None, help="rule set file (TOML or JSON; default: seed)")
    detect.add_argument("--shop", default=None, help="apply this shop's overrides")
    evaluate = sub.add_parser("eval", help="precision and recall per label, and a false-positive scan of JDDC")
    evaluate.add_argument("--rules", type=Path, default=None)
    evaluate.add_argument("--data", type=Path, default=DATA_DIR, help="folder with eval_*.jsonl")
    evaluate.add_argument("--jddc", type=Path, default=None, help="JDDC chat file (default: ../shared/... if present)")
    evaluate.add_argument("--no-jddc", action="store_true", help="skip the false-positive scan")
    evaluate.add_argument("--profile", default="jd", help="profile for the JDDC scan (default: jd)")
    evaluate.add_argument("--verbose", action="store_true", help="list every false positive and miss")
    train = sub.add_parser("train", help="train the detectors' second-opinion model from COLD, JDDC and the "
                                         "in-domain train splits; writes the weights and the training report")
    train.add_argument("--data", type=Path, default=INDOMAIN_DIR, help="folder with <label>.train.jsonl")
    train.add_argument("--cold", type=Path, default=None, help="COLD folder (default: ../shared/data/cold)")
    train.add_argument("--jddc", type=Path, default=None, help="JDDC chat file (default: ../shared/...)")
    train.add_argument("--out", type=Path, default=MODEL_PATH, help="weights file (the report goes next to it)")
    train.add_argument("--seed", type=int, default=13)
    rollup = sub.add_parser("rollup", help="the nightly KPI report (CSV + HTML) and review sample for one day")
    rollup.add_argument("--date", default=None,
                        help="the floor's local day, YYYY-MM-DD (default: yesterday in the floor's timezone)")
    rollup.add_argument("--out", type=Path, default=None, help="output folder (default: $ZHIJIAN_DATA_DIR/reports)")
    rollup.add_argument("--xlsx", action="store_true", help="also write report-<day>.xlsx (坐席, 班组, 抽检样本)")
    rollup.add_argument("--lang", choices=("zh", "en"), default="zh", help="CSV headers and report language")
    rollup.add_argument("--period", choices=("day", "week", "month"), default="day",
                        help="week (Monday–Sunday) or month: ranked rollup of the period holding --date, with "
                             "the change against the previous period")
    rollup.add_argument("--sample-cap", type=int, default=None, metavar="N",
                        help="review sample: at most N conversations per agent and day (default: each shop's "
                             "[rubric.sampling] cap, 3 in the seed)")
    rollup.add_argument("--reissue", action="store_true",
                        help="only re-issue reports whose results changed after they went out (appeals, reviews, "
                             "offline questions past their 24 hours), as new versions")
    rollup.add_argument("--versions", action="store_true",
                        help="list the issued versions of the --period report holding --date, with what changed")
    rollup.add_argument("--version", type=int, default=None, metavar="N",
                        help="write version N of the --period report holding --date, as issued, into --out")
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
    indomain = args.data / "indomain"
    detector = book.detector(None)
    results = [evaluate_split(rows, label, detector) for name, label in SPLITS.items()
               if (rows := read_split(name, "test", indomain))]
    if results:
        print(format_splits(results, f"frozen test splits ({indomain.name}/<label>.test.jsonl), profile "
                                     f"{detector.ruleset.profile or '(none)'}, rule set {book.ruleset.version}; "
                                     "model = its alert threshold alone, combined = as shipped (alerts and score), "
                                     "+review = also the model's review-only findings (QA queue)"))
        if args.verbose:
            for result in results:
                print("\n".join(f"  missed {result.label}: {text}" for text in result.combined.misses))
                print("\n".join(f"  false positive {result.label}: {text}" for text in result.combined.false_positives))
        print()
    for name, evaluate, what in (("evasions", evaluate_evasions, "caught"), ("lookalikes", evaluate_lookalikes,
                                                                             "without an alarm")):
        path = indomain / f"{name}.jsonl"
        if path.exists():
            suite = evaluate(read_jsonl(path), detector)
            print(f"{name}: {suite.passed}/{suite.total} {what} ({100 * suite.rate:.1f} %)")
            for text, wanted, got in suite.failures:
                print(f"  {text}  (labelled {', '.join(wanted) or 'none'}; found {', '.join(got) or 'nothing'})")
    print()
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
            document = dict(book.ruleset.document)
            document["default_profile"] = args.profile  # every message as a shop with this profile sees it
            profiled = RuleBook(parse_ruleset(document))
            print()
            reviewed = {label: read_reviewed(indomain, label) for label in LABELS}
            print(format_corpus_report(scan_corpus(read_jddc(path), profiled, reviewed=reviewed),
                                       f"{path.name}, profile {args.profile} "
                                       "(no timestamps in the corpus: throttling assumes one minute per message)"))
        else:
            print(f"\n(no JDDC corpus at {path}: false-positive scan skipped; it needs ../shared/data/jddc_sample)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from detectors.normalise import Normaliser
    from detectors.training import TrainConfig, format_report, read_cold, train_all
    from zhijian.core.corpus import jddc_path, read_jddc

    cold_dir = args.cold or SHARED_DATA / "cold"
    jddc_file = args.jddc or jddc_path()
    missing = [str(p) for p in (cold_dir / "train.csv", jddc_file) if not p.exists()]
    if missing:
        print(f"zhijian train needs the shared corpora; not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    config = TrainConfig(seed=args.seed)
    ruleset = load_ruleset()
    normalise = Normaliser(ruleset.variants)
    rules_only = Detector(parse_ruleset({**ruleset.document, "model": {"enabled": False}}))

    def rules(text: str, sender: str, label: str) -> bool:
        return any(f.label == label for f in rules_only.detect(text, sender))

    jddc = [(sender, text) for _, sender, text in read_jddc(jddc_file)]
    document, reports = train_all(args.data, jddc, read_cold(cold_dir), normalise, config,
                                  progress=lambda line: print(line, file=sys.stderr, flush=True), rules=rules)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n",
                        encoding="utf-8")
    sources = {"in-domain": f"{args.data.name}/<label>.train.jsonl", "JDDC": jddc_file.name,
               "COLD": f"{cold_dir.name}/train.csv"}
    report = format_report(reports, config, sources)
    args.out.with_suffix(".md").write_text(report, encoding="utf-8")
    print(report)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB) and {args.out.with_suffix('.md')}")
    return 0


def cmd_rollup(args: argparse.Namespace) -> int:
    import datetime
    import time

    from detectors.rubric import rubric_of
    from zhijian.core.settings import Settings
    from zhijian.kafka.rules import initial_ruleset
    from zhijian.reports.period import period_of
    from zhijian.reports.rollup import EmptyDay, floor_yesterday, reissue_stale, run_rollup, write_version
    from zhijian.scoring import rubric_lookup
    from zhijian.store.database import Database
    from zhijian.store.offline import expire_offline_pending

    if args.date is not None:
        try:
            datetime.date.fromisoformat(args.date)
        except ValueError:
            print(f"--date must be YYYY-MM-DD, got {args.date!r}", file=sys.stderr)
            return 2
    if args.sample_cap is not None and args.sample_cap < 0:
        print("--sample-cap must be 0 or more", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    store = Database(settings.database_url)
    out = args.out or settings.data_dir / "reports"
    try:
        store.upgrade()
        ruleset = initial_ruleset(store)
        book = RuleBook(ruleset)
        rubric = rubric_of(ruleset.rubric or load_ruleset().rubric)
        day = args.date or floor_yesterday(rubric)
        name = day if args.period == "day" else period_of(args.period, day).name
        if args.versions or args.version is not None:
            versions = store.report_versions
            if args.version is not None:
                try:
                    for path in write_version(store, args.period, name, args.version, out):
                        print(path)
                except LookupError as exc:
                    print(str(exc), file=sys.stderr)
                    return 3
                return 0
            for entry in versions.versions(args.period, name):
                moved = entry["changes"]
                print(f"{args.period} {name} v{entry['version']} issued {entry['issued_at']} ({entry['reason']}): "
                      f"{len(moved.get('conversations', []))} conversation(s), {len(moved.get('agents', []))} "
                      "agent(s) changed")
            return 0
        # an offline question whose 24 hours are over is 回复中断 now: rescored, its report marked for re-issue
        expired = expire_offline_pending(store, rubric_lookup(book), int(time.time() * 1000))
        if expired:
            print(f"{len(expired)} offline question(s) past their 24 hours rescored as 回复中断")
        if not args.reissue:
            if args.period != "day":
                from zhijian.reports.period import run_period_rollup

                period = run_period_rollup(store, args.period, day, out, lang=args.lang, allow_empty=args.allow_empty)
                for path in (period.agents_csv, period.teams_csv, period.report_html):
                    print(path)
            else:
                files = run_rollup(store, day, out, rubric, lang=args.lang, sample_cap=args.sample_cap,
                                   allow_empty=args.allow_empty, book=book)
                for path in (files.agents_csv, files.teams_csv, files.sample_csv, files.report_html):
                    print(path)
                if args.xlsx:
                    from zhijian.reports.xlsx import rollup_workbook

                    print(rollup_workbook(files.agents_csv, files.teams_csv, files.sample_csv,
                                          files.report_html.with_name(f"report-{day}.xlsx")))
        for kind, issued, version in reissue_stale(store, out, rubric, book=book, lang=args.lang):
            print(f"re-issued {kind} {issued} as version {version}")
    except EmptyDay as exc:
        print(f"warning: {exc}; check --date and DATABASE_URL, or pass --allow-empty", file=sys.stderr)
        return 3
    finally:
        store.dispose()
    return 0
