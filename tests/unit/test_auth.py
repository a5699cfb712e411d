import pytest
from fastapi import HTTPException
from starlette.requests import Request

from api.auth import TokenAuth


def request(headers: dict[str, str] | None = None, query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "headers": raw, "query_string": query.encode(), "method": "GET", "path": "/"})


def test_bearer_header_and_query_token_are_accepted() -> None:
    auth = TokenAuth(["s3cret"])
    auth.require(request({"Authorization": "Bearer s3cret"}))
    auth.require(request(query="token=s3cret"))


@pytest.mark.parametrize(("headers", "query"), [({}, ""), ({"Authorization": "Bearer nope"}, ""),
                                                 ({"Authorization": "Basic s3cret"}, ""), ({}, "token=")])
def test_missing_or_wrong_tokens_get_401(headers: dict[str, str], query: str) -> None:
    with pytest.raises(HTTPException) as info:
        TokenAuth(["s3cret"]).require(request(headers, query))
    assert info.value.status_code == 401


def test_empty_token_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenAuth([""])
