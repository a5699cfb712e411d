"""``zhijian source add NAME [--mapping FILE]`` / ``zhijian source list``: ingest tokens per source."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zhijian.core.ingest_mapping import MappingError, check_mapping
from zhijian.core.settings import Settings


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    source = sub.add_parser("source", help="ingest sources and their tokens (POST /api/events)")
    actions = source.add_subparsers(dest="source_command", required=True)
    add = actions.add_parser("add", help="add a source and print its token (shown once)")
    add.add_argument("name")
    add.add_argument("--mapping", type=Path, default=None, help="JSON file: the platform's fields → the contract")
    actions.add_parser("list", help="list sources")
    disable = actions.add_parser("disable", help="revoke a source's token")
    disable.add_argument("name")


def cmd_source(args: argparse.Namespace) -> int:
    from zhijian.store.database import Database  # the store (SQLAlchemy) only when a command runs
    from zhijian.store.errors import SourceError

    store = Database(Settings.from_env().database_url)
    try:
        store.upgrade()
        if args.source_command == "list":
            for s in store.sources.all():
                print(f"{s['name']}\t{'mapping' if s['mapping'] else '-'}\t"
                      f"{'disabled' if s['disabled'] else 'active'}\t{s['created_at']}")
            return 0
        if args.source_command == "disable":
            if not store.sources.disable(args.name):
                print(f"zhijian source: no source {args.name!r}", file=sys.stderr)
                return 2
            print(f"disabled {args.name}")
            return 0
        mapping = None
        if args.mapping is not None:
            try:
                mapping = check_mapping(json.loads(args.mapping.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                kind = "mapping" if isinstance(exc, MappingError) else type(exc).__name__
                print(f"zhijian source add: {kind}: {exc}", file=sys.stderr)
                return 2
        try:
            token = store.sources.add(args.name, mapping)
        except SourceError as exc:
            print(f"zhijian source add: {exc}", file=sys.stderr)
            return 2
        print(f"added source {args.name}; its ingest token (shown once, only its hash is stored):\n{token}")
        return 0
    finally:
        store.dispose()
