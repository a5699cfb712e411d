"""The password policy: at least ``MIN_LENGTH`` characters, not a well-known weak password
(``common_passwords.txt``, shipped with the package), not the user name, not one repeated character.

Applied wherever a password is set: ``zhijian user add``, ``POST /api/users`` and password changes."""

from __future__ import annotations

from functools import cache
from pathlib import Path

MIN_LENGTH = 10
MAX_LENGTH = 256
_LIST = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    lines = _LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str, username: str = "") -> str | None:
    """Why ``password`` is refused (one sentence), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"the password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password may have at most {MAX_LENGTH} characters"
    folded = password.strip().lower()
    if folded in common_passwords():
        return "the password is on the list of common passwords; choose another"
    if len(set(folded)) <= 2:
        return "the password repeats one or two characters; choose another"
    if username and username.lower() in folded and len(folded) - len(username) < 6:
        return "the password is too close to the user name; choose another"
    return None
