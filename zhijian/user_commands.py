"""``zhijian user add`` / ``zhijian user list``."""

from __future__ import annotations

import argparse
import getpass
import sys

from zhijian.core.settings import Settings
from zhijian.store.users import ROLES, UserError, UserStore


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


def cmd_user(args: argparse.Namespace) -> int:
    store = UserStore(Settings.from_env().database_url)
    try:
        store.create_schema()
        if args.user_command == "list":
            for user in store.list_users():
                print(f"{user.username}\t{user.role}\t{user.team_id or '-'}\t{user.agent_id or '-'}")
            return 0
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.username}: ")
            if getpass.getpass("again: ") != password:
                print("the passwords differ", file=sys.stderr)
                return 2
        try:
            user = store.add_user(args.username, password, role=args.role, team_id=args.team,
                                  agent_id=args.agent_id, display_name=args.name)
        except UserError as exc:
            print(f"zhijian user add: {exc}", file=sys.stderr)
            return 2
        print(f"added {user.username} ({user.role}{', team ' + user.team_id if user.team_id else ''})")
        return 0
    finally:
        store.dispose()
