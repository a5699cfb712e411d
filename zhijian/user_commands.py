"""``zhijian user add`` / ``list`` / ``passwd`` / ``disable`` / ``enable``. A password change or
disabling ends the user's sessions; their open dashboards are signed out within seconds."""

from __future__ import annotations

import argparse
import getpass
import sys

from zhijian.core.roles import ROLES
from zhijian.core.settings import Settings


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="manage dashboard users")
    actions = user.add_subparsers(dest="user_command", required=True)
    add = actions.add_parser("add", help="add a user (password from --password-stdin or a prompt)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--team", default=None, help="team_id (required for floor_lead)")
    add.add_argument("--agent-id", default=None, help="agent_id of an agent user (default: the username)")
    add.add_argument("--name", default=None, help="display name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    actions.add_parser("list", help="list users")
    passwd = actions.add_parser("passwd", help="set a new password (ends the user's sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    for verb in ("disable", "enable"):
        actions.add_parser(verb, help=f"{verb} a user" + (" (ends their sessions)" if verb == "disable" else "")
                           ).add_argument("username")


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != password:
        print("the passwords differ", file=sys.stderr)
        return None
    return password


def cmd_user(args: argparse.Namespace) -> int:
    from zhijian.store.database import Database  # the store (SQLAlchemy) only when a command runs
    from zhijian.store.errors import UnknownUser, UserError

    store = Database(Settings.from_env().database_url)
    try:
        store.upgrade()
        if args.user_command == "list":
            for user in store.users.all():
                print(f"{user.username}\t{user.role}\t{user.team_id or '-'}\t{user.agent_id or '-'}")
            return 0
        if args.user_command in ("disable", "enable"):
            try:
                store.users.set_disabled(args.username, args.user_command == "disable")
            except UnknownUser as exc:
                print(f"zhijian user {args.user_command}: {exc}", file=sys.stderr)
                return 2
            print(f"{args.user_command}d {args.username}")
            return 0
        password = _read_password(args)
        if password is None:
            return 2
        if args.user_command == "passwd":
            try:
                store.users.set_password(args.username, password)
            except UserError as exc:
                print(f"zhijian user passwd: {exc}", file=sys.stderr)
                return 2
            print(f"new password for {args.username}; their sessions ended")
            return 0
        try:
            user = store.users.add(args.username, password, role=args.role, team_id=args.team,
                                  agent_id=args.agent_id, display_name=args.name)
        except UserError as exc:
            print(f"zhijian user add: {exc}", file=sys.stderr)
            return 2
        print(f"added {user.username} ({user.role}{', team ' + user.team_id if user.team_id else ''})")
        return 0
    finally:
        store.dispose()
