"""Checks that tell a real identifier from digits that merely look like one.

A pattern finds 16–19 digits; only a Luhn-valid number is a plausible bank card. A pattern
finds 18 characters; only a valid check digit and a real birth date make a 居民身份证号.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10x98765432"


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit() or char in "xX")


def luhn(text: str) -> bool:
    digits = [int(char) for char in text if char.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def id_card(text: str) -> bool:
    """GB 11643 check digit and a birth date that exists and is not in the future."""
    code = _digits(text).lower()
    if len(code) != 18 or not code[:17].isdigit():
        return False
    expected = _ID_CHECK[sum(int(code[i]) * _ID_WEIGHTS[i] for i in range(17)) % 11]
    if code[17] != expected:
        return False
    try:
        born = datetime.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return False
    return datetime.date(1900, 1, 1) <= born <= datetime.date.today()


VALIDATORS: dict[str, Callable[[str], bool]] = {"luhn": luhn, "id_card": id_card}
