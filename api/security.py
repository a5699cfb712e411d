"""Security headers on every HTTP response, and no query strings (tickets, tokens) in logs."""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class SecurityHeaders:
    """ASGI middleware: every HTTP response (routes, errors, static files) gets the headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._raw = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((n, v) for n, v in self._raw if n not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


_QUERY = re.compile(r"\?[^\s\"]*")
REDACTED = "?[redacted]"


def redact(text: str) -> str:
    """A logged path with its query string replaced (the path is kept)."""
    return _QUERY.sub(REDACTED, text)


class RedactQueryStrings(logging.Filter):
    """Replace query strings in log records (uvicorn's access lines and WebSocket lines carry the
    full path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) and "?" in arg else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) and "?" in v else v for k, v in record.args.items()}
        if isinstance(record.msg, str) and "?" in record.msg and not record.args:
            record.msg = redact(record.msg)
        return True


def install_log_redaction(*names: str) -> None:
    """Add the filter to the named loggers (once each) and to their handlers."""
    for name in names or ("uvicorn.access", "uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
            logger.addFilter(RedactQueryStrings())
        for handler in logger.handlers:
            if not any(isinstance(f, RedactQueryStrings) for f in handler.filters):
                handler.addFilter(RedactQueryStrings())
