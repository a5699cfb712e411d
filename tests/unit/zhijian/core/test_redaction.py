"""Personal data and credentials never reach a log line (zhijian/core/redaction.py): every record of every
logger is cleaned when it is made, its arguments, its traceback and uvicorn's access lines included."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from zhijian.core import redaction

SECRET = "s3cr3t-admin-token-value"
PHONE, ID_CARD, CARD, EMAIL = "13812345678", "11010519491231002X", "6222 0212 3456 7890 128", "wang.li@example.com"


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    redaction.install()
    redaction.add_secret(SECRET)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.core_redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)
        redaction.uninstall()


def test_personal_data_and_credentials_are_replaced_wherever_they_are_in_a_record(
        log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = log
    logger.info("customer wrote 请联系%s 或 +86 138-1234-5678", PHONE)
    logger.warning("id %s card %s mail %s", ID_CARD, CARD, EMAIL)
    logger.info("GET /ws/alerts?token=abcdefgh12345678&x=1 and Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig")
    logger.info("settings %s", {"admin": SECRET, "password": "hunter2-long"})
    try:
        "留言 13912345678 \ud800".encode()
    except UnicodeEncodeError:
        logger.exception("could not encode a message")  # the exception quotes the text it choked on
    logger.info("offset %d of %s, lag %.1f s, order 202611240001", 42, "chat.messages", 1.5)
    text = out.getvalue()
    for leaked in (PHONE, "138-1234-5678", "13912345678", ID_CARD, CARD, EMAIL, SECRET, "abcdefgh12345678",
                   "eyJhbGciOiJIUzI1NiJ9", "hunter2-long"):
        assert leaked not in text, leaked
    for placeholder in ("[phone]", "[id-card]", "[card]", "[email]", "[secret]", "token=[redacted]",
                        "Bearer [redacted]", "UnicodeEncodeError"):
        assert placeholder in text, placeholder
    # what is not personal stays readable: numbers of the pipeline, topic names, order numbers
    assert "offset 42 of chat.messages, lag 1.5 s, order 202611240001" in text


def test_uvicorn_access_lines_keep_their_shape(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = log
    logger.handlers[0].setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s',
                                                    use_colors=False))
    logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/api/alerts?ticket={SECRET}", "1.1", 200)
    assert out.getvalue().strip() == '127.0.0.1:5000 - "GET /api/alerts?ticket=[redacted] HTTP/1.1" 200 OK'


def test_short_values_are_not_taken_for_secrets() -> None:
    redaction.add_secret("ok")
    assert redaction.redact("ok, 42 alerts") == "ok, 42 alerts"


def test_named_arguments_keep_working_with_credentials_blanked(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = log
    logger.info("user %(user)s token %(session_token)s from %(phone)s",
                {"user": "lead-a", "session_token": "abc", "phone": PHONE})
    assert out.getvalue().strip() == "INFO user lead-a token [redacted] from [phone]"
