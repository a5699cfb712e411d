"""Personal data and credentials taken out of every log line, at the logging layer.

The code never logs message text on purpose; this is the net under that rule. ``install()`` wraps the
log record factory, so every record of every logger (ours, Faust's, aiokafka's, uvicorn's) is cleaned
when it is made, before any handler or formatter sees it: mainland mobile numbers, 18-digit ID card
numbers, bank card numbers, e-mail addresses, bearer tokens, ``token=``/``ticket=``/``password=`` values
and the operator's registered secrets (the admin token). An exception's traceback is formatted and
cleaned up front too (a ``UnicodeEncodeError`` quotes the string it choked on)."""

from __future__ import annotations

import logging
import numbers
import re
import threading
from collections.abc import Callable
from typing import Any

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b(token|ticket|password|passwd|secret|api_key|access_token)([\"']?\s*[=:]\s*[\"']?)"
                r"[^\s&\"',;}]+"), r"\1\2[redacted]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{5}[\dXx](?![0-9A-Za-z])"), "[id-card]"),
    (re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)"), "[phone]"),
    (re.compile(r"(?<!\d)(?:\d[ -]?){15,18}\d(?!\d)"), "[card]"),
)
_SENSITIVE_KEY = re.compile(r"(?i)token|ticket|password|passwd|secret|api_key")
_secrets: set[str] = set()
_lock = threading.Lock()
_installed: list[Callable[..., logging.LogRecord]] = []
_formatter = logging.Formatter()


def redact(text: str) -> str:
    """``text`` with personal data and credentials replaced by placeholders."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[secret]")
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def add_secret(value: str | None) -> None:
    """Never log this literal string (only values long enough not to collide with ordinary words)."""
    if value and len(value) >= 8:
        with _lock:
            _secrets.add(value)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, numbers.Number):
        return value
    return redact(str(value))  # an object whose str() may carry text (an exception, a dict, bytes)


def clean_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message template, arguments, traceback and stack cleaned (in place)."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    else:
        record.msg = _clean(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_clean(arg) for arg in record.args)
    elif isinstance(record.args, dict):  # logger.info("%s", a_dict) leaves the dict itself as the arguments
        if isinstance(record.msg, str) and "%(" in record.msg:
            record.args = {key: "[redacted]" if _SENSITIVE_KEY.search(str(key)) else _clean(value)
                           for key, value in record.args.items()}
        else:
            record.args = (redact(str(record.args)),)
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact(_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install() -> None:
    """Clean every log record of this process from now on (idempotent)."""
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return clean_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed.append(previous)


def uninstall() -> None:
    """Back to the record factory before ``install()`` (tests)."""
    with _lock:
        if _installed:
            logging.setLogRecordFactory(_installed.pop())
