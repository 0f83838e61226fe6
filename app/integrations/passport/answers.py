"""Reading the passport API's answers, and building its paths.

An interpreter turns one `httpx.Response` into a result or a PassportError; the client runs
it on every try, so a 404 that means "none" is an ordinary answer and never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from app.integrations.passport.errors import PassportError, PassportErrorCode
from app.integrations.passport.models import (
    PassportAccount,
    PassportFamily,
    bad_response,
    parse_account,
    parse_family,
)

T = TypeVar("T")
Interpret = Callable[[httpx.Response], T]

# (status, error code of the body) → what the caller sees.
ERROR_CODES: dict[tuple[int, str], PassportErrorCode] = {
    (404, "account_not_found"): PassportErrorCode.NOT_FOUND,
    (404, "family_not_found"): PassportErrorCode.NOT_FOUND,
    (404, "member_not_found"): PassportErrorCode.NOT_FOUND,
    (409, "already_in_family"): PassportErrorCode.ALREADY_IN_FAMILY,
    (409, "cannot_remove_admin"): PassportErrorCode.CANNOT_REMOVE_ADMIN,
    (422, "family_full"): PassportErrorCode.FAMILY_FULL,
}


# Reading answers


def expect(status: int, parse: Interpret[T]) -> Interpret[T]:
    def interpret(response: httpx.Response) -> T:
        if response.status_code == status:
            return parse(response)
        raise error_for(response)

    return interpret


def or_none(status: int, parse: Interpret[T], codes: set[str]) -> Interpret[T | None]:
    """Like expect, and None for a 404 with one of the error codes."""

    def interpret(response: httpx.Response) -> T | None:
        if response.status_code == 404 and error_code(response) in codes:
            return None
        return expect(status, parse)(response)

    return interpret


def json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise bad_response(f"{response.status_code}: not JSON", response.status_code) from exc


def account(response: httpx.Response) -> PassportAccount:
    return parse_account(json(response))


def family(response: httpx.Response) -> PassportFamily:
    return parse_family(json(response))


def nothing(response: httpx.Response) -> None:
    return None


def error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_code(response: httpx.Response) -> str | None:
    code = error_body(response).get("error")
    return code if isinstance(code, str) else None


def error_for(response: httpx.Response) -> PassportError:
    status = response.status_code
    if status in (401, 403):
        return PassportError(PassportErrorCode.UNAUTHORIZED, "token refused", status=status)
    if status >= 500:
        return PassportError(PassportErrorCode.UNAVAILABLE, f"server error {status}", status=status)
    body = error_body(response)
    error = body.get("error")
    code = ERROR_CODES.get((status, error)) if isinstance(error, str) else None
    if code is None:
        return bad_response(f"unexpected answer {status} {error or ''}".strip(), status)
    family_id = body.get("family_id")
    return PassportError(
        code,
        error or "",
        status=status,
        family_id=family_id if isinstance(family_id, str) else None,
    )


# Paths


def segment(value: str) -> str:
    if not value:
        raise ValueError("an empty id")
    return quote(value, safe="")


def family_path(family_id: str) -> str:
    return f"/v1/families/{segment(family_id)}"


def member_path(family_id: str, uid: str) -> str:
    return f"{family_path(family_id)}/members/{segment(uid)}"
