"""``zhijian db upgrade`` / ``zhijian db current``: the schema's migrations, by hand.

Every process already upgrades the database at start; these verbs let an operator do it ahead of a
deployment (``upgrade``) or check where a database stands (``current``)."""

from __future__ import annotations

import argparse

from zhijian.core.settings import Settings


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="the database schema: apply migrations, show the version")
    actions = db.add_subparsers(dest="db_command", required=True)
    up = actions.add_parser("upgrade", help="apply every migration the database lacks (DATABASE_URL)")
    up.add_argument("--to", type=int, default=None, help="stop at this version (default: the newest)")
    actions.add_parser("current", help="print the database's schema version and the newest one")


def cmd_db(args: argparse.Namespace) -> int:
    from zhijian.store import migrations  # the store (SQLAlchemy) only when a command runs
    from zhijian.store.database import Database

    store = Database(Settings.from_env().database_url)
    try:
        if args.db_command == "upgrade":
            before = store.version()
            after = migrations.upgrade(store.engine, migrations.HEAD if args.to is None else args.to)
            print(f"schema version {before} → {after}" if after != before else f"schema version {after}: up to date")
            return 0
        version = store.version()
        state = "up to date" if version == migrations.HEAD else "behind: run zhijian db upgrade"
        print(f"schema version {version} (newest {migrations.HEAD}; {state})")
        return 0
    finally:
        store.dispose()
