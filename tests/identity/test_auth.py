"""register → login → viewer, token rotation, logout, account deletion, and their abuse cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from app.auth import digest
from app.models.identity import RefreshToken
from app.runtime import Runtime
from tests.conftest import TEST_JWT_SECRET
from tests.factories.identity import PASSWORD, access_token, create_user
from tests.helpers import error_codes, gql, row_counts

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) {
    user { id email phone roles status locale timezone }
    tokens { accessToken refreshToken tokenType }
    errors { code field message }
  }
}
"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) {
    user { id email }
    tokens { accessToken refreshToken }
    errors { code field message retryAfter }
  }
}
"""
REFRESH = """
mutation Refresh($input: TokenRefreshInput!) {
  tokenRefresh(input: $input) {
    tokens { accessToken refreshToken }
    errors { code field message }
  }
}
"""
LOGOUT = """
mutation Logout($input: LogoutInput!) { logout(input: $input) { errors { code } } }
"""
ACCOUNT_DELETE = """
mutation Delete($input: AccountDeleteInput!) {
  accountDelete(input: $input) { errors { code field } }
}
"""
VIEWER = "query Viewer { viewer { user { id email roles status groups { name } } } }"


async def register(client: httpx.AsyncClient, **fields: object) -> dict:
    data = {"email": "Anna@Example.com", "password": PASSWORD, **fields}
    body = await gql(client, REGISTER, {"input": data})
    return body["data"]["register"]


async def login(client: httpx.AsyncClient, login: str, password: str = PASSWORD) -> dict:
    body = await gql(client, LOGIN, {"input": {"login": login, "password": password}})
    return body["data"]["login"]


async def test_register_login_viewer(client: httpx.AsyncClient) -> None:
    registered = await register(
        client, email="  Anna@Example.COM ", locale="ru_ru", timezone="Europe/Moscow"
    )
    assert registered["errors"] == []
    assert registered["user"]["email"] == "anna@example.com"
    assert registered["user"]["roles"] == ["USER"]
    assert registered["user"]["locale"] == "ru-RU"

    logged_in = await login(client, "ANNA@example.com")
    assert logged_in["errors"] == []
    token = logged_in["tokens"]["accessToken"]

    viewer = await gql(client, VIEWER, token=token)
    assert viewer["data"]["viewer"]["user"]["email"] == "anna@example.com"
    assert viewer["data"]["viewer"]["user"]["id"] == registered["user"]["id"]


async def test_register_with_phone_normalizes_to_e164(client: httpx.AsyncClient) -> None:
    registered = await register(client, email=None, phone="+7 916 123-45-67")
    assert registered["errors"] == []
    assert registered["user"]["phone"] == "+79161234567"
    assert (await login(client, "+79161234567"))["errors"] == []


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"email": "not-an-email"}, "INVALID_EMAIL", "email"),
        ({"email": "a" * 250 + "@x.io"}, "INVALID_EMAIL", "email"),
        ({"email": None, "phone": "12345"}, "INVALID_PHONE", "phone"),
        ({"email": None, "phone": "+7 000"}, "INVALID_PHONE", "phone"),
        ({"email": None}, "CONTACT_REQUIRED", "email"),
        ({"password": "short"}, "WEAK_PASSWORD", "password"),
        ({"password": "aaaaaaaaaaaaaaaa"}, "WEAK_PASSWORD", "password"),
        ({"password": "x1" * 100}, "PASSWORD_TOO_LONG", "password"),
        ({"locale": "not a locale"}, "INVALID_LOCALE", "locale"),
        ({"timezone": "Mars/Olympus"}, "INVALID_TIMEZONE", "timezone"),
    ],
)
async def test_register_rejects_bad_input_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, fields: dict, code: str, field: str
) -> None:
    before = await row_counts(runtime)
    result = await register(client, **fields)
    assert result["user"] is None and result["tokens"] is None
    assert [(e["code"], e["field"]) for e in result["errors"]] == [(code, field)]
    assert result["errors"][0]["message"]
    assert await row_counts(runtime) == before


async def test_duplicate_registration_in_other_case_or_spacing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert (await register(client, email="anna@example.com"))["errors"] == []
    before = await row_counts(runtime)
    again = await register(client, email="  ANNA@EXAMPLE.com  ")
    assert [e["code"] for e in again["errors"]] == ["EMAIL_TAKEN"]
    assert await row_counts(runtime) == before


async def test_duplicate_phone(client: httpx.AsyncClient) -> None:
    assert (await register(client, email=None, phone="+79161234567"))["errors"] == []
    again = await register(client, email=None, phone="+7 (916) 123 45 67")
    assert [e["code"] for e in again["errors"]] == ["PHONE_TAKEN"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    wrong = await login(client, "anna@example.com", "wrong-password-123")
    unknown = await login(client, "nobody@example.com")
    assert wrong == unknown
    assert wrong["tokens"] is None
    assert [e["code"] for e in wrong["errors"]] == ["INVALID_CREDENTIALS"]


async def test_login_is_rate_limited_with_retry_after(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await register(client)
    for _ in range(runtime.settings.login_max_attempts):
        result = await login(client, "anna@example.com", "wrong-password-123")
        assert result["errors"][0]["code"] == "INVALID_CREDENTIALS"
    limited = await login(client, "anna@example.com")  # even the right password now waits
    assert limited["tokens"] is None
    assert limited["errors"][0]["code"] == "RATE_LIMITED"
    assert 0 < limited["errors"][0]["retryAfter"] <= runtime.settings.login_window_seconds
    # Another account from the same address is still allowed (per-account counter).
    await register(client, email="boris@example.com")
    assert (await login(client, "boris@example.com"))["errors"] == []


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    await register(client)
    first = (await login(client, "anna@example.com"))["tokens"]["refreshToken"]
    rotated = await gql(client, REFRESH, {"input": {"refreshToken": first}})
    second = rotated["data"]["tokenRefresh"]["tokens"]["refreshToken"]
    assert second != first

    reused = await gql(client, REFRESH, {"input": {"refreshToken": first}})
    assert [e["code"] for e in reused["data"]["tokenRefresh"]["errors"]] == ["REFRESH_TOKEN_REUSED"]
    # The family is revoked: the newer token no longer works either.
    after = await gql(client, REFRESH, {"input": {"refreshToken": second}})
    assert [e["code"] for e in after["data"]["tokenRefresh"]["errors"]] == ["INVALID_REFRESH_TOKEN"]


async def test_unknown_refresh_token(client: httpx.AsyncClient) -> None:
    body = await gql(client, REFRESH, {"input": {"refreshToken": "made-up"}})
    assert body["data"]["tokenRefresh"]["errors"][0]["code"] == "INVALID_REFRESH_TOKEN"


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    await register(client)
    tokens = (await login(client, "anna@example.com"))["tokens"]
    body = await gql(
        client,
        LOGOUT,
        {"input": {"refreshToken": tokens["refreshToken"]}},
        token=tokens["accessToken"],
    )
    assert body["data"]["logout"]["errors"] == []
    refused = await gql(client, REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert refused["data"]["tokenRefresh"]["errors"][0]["code"] == "INVALID_REFRESH_TOKEN"


async def test_an_expired_refresh_token_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await register(client)
    tokens = (await login(client, "anna@example.com"))["tokens"]
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == digest(tokens["refreshToken"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    refused = await gql(client, REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert refused["data"]["tokenRefresh"]["tokens"] is None
    assert [e["code"] for e in refused["data"]["tokenRefresh"]["errors"]] == [
        "INVALID_REFRESH_TOKEN"
    ]
    async with runtime.session_factory() as session:
        token = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == digest(tokens["refreshToken"]))
        )
    assert token is not None and token.rotated_at is None  # not spent by the refusal


async def test_logout_with_another_users_refresh_token_revokes_nothing_of_theirs(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await register(client)
    await register(client, email="boris@example.com")
    anna = (await login(client, "anna@example.com"))["tokens"]
    boris = (await login(client, "boris@example.com"))["tokens"]
    body = await gql(
        client,
        LOGOUT,
        {"input": {"refreshToken": boris["refreshToken"]}},
        token=anna["accessToken"],
    )
    assert body["data"]["logout"]["errors"] == []
    async with runtime.session_factory() as session:
        revoked = (
            await session.scalars(select(RefreshToken).where(RefreshToken.revoked_at.is_not(None)))
        ).all()
    assert revoked == []
    # Boris's token still rotates.
    rotated = await gql(client, REFRESH, {"input": {"refreshToken": boris["refreshToken"]}})
    assert rotated["data"]["tokenRefresh"]["errors"] == []
    assert rotated["data"]["tokenRefresh"]["tokens"]["refreshToken"]


async def test_logout_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    body = await gql(client, LOGOUT, {"input": {}})
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["data"] is None


def _forged(runtime: Runtime, user_id: str, **changes: object) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": runtime.settings.jwt_issuer,
        "aud": runtime.settings.jwt_audience,
        "sub": user_id,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "roles": ["USER"],
    }
    claims.update(changes)
    secret = str(claims.pop("secret", TEST_JWT_SECRET))
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, "HS256")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": datetime.now(UTC) - timedelta(minutes=10)}, "EXPIRED"),
        ({"secret": "another-secret-0123456789abcdef0123456789"}, "INVALID"),
        ({"aud": "someone-else"}, "WRONG_AUDIENCE"),
        ({"iss": "evil"}, "WRONG_ISSUER"),
    ],
)
async def test_untrusted_access_tokens_are_refused(
    client: httpx.AsyncClient, runtime: Runtime, changes: dict, reason: str
) -> None:
    user = await create_user(runtime)
    body = await gql(client, VIEWER, token=_forged(runtime, str(user.id), **changes))
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": reason}


async def test_tampered_token_payload_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    header, _, signature = (await access_token(runtime, user)).split(".")
    other = await create_user(runtime)
    _, payload, _ = (await access_token(runtime, other)).split(".")
    body = await gql(client, VIEWER, token=f"{header}.{payload}.{signature}")
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_malformed_authorization_header(client: httpx.AsyncClient) -> None:
    body = await gql(client, VIEWER, headers={"authorization": "Basic abc"})
    assert body["errors"][0]["extensions"]["reason"] == "MALFORMED"


async def test_viewer_needs_authentication(client: httpx.AsyncClient) -> None:
    body = await gql(client, VIEWER)
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_account_delete_erases_pii_and_stops_tokens(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await register(client)
    tokens = (await login(client, "anna@example.com"))["tokens"]
    wrong = await gql(
        client,
        ACCOUNT_DELETE,
        {"input": {"password": "nope-nope-nope"}},
        token=tokens["accessToken"],
    )
    assert wrong["data"]["accountDelete"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert (await gql(client, VIEWER, token=tokens["accessToken"]))["data"] is not None

    deleted = await gql(
        client, ACCOUNT_DELETE, {"input": {"password": PASSWORD}}, token=tokens["accessToken"]
    )
    assert deleted["data"]["accountDelete"]["errors"] == []

    viewer = await gql(client, VIEWER, token=tokens["accessToken"])
    assert viewer["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "ACCOUNT_DELETED",
    }
    assert (await login(client, "anna@example.com"))["errors"][0]["code"] == "INVALID_CREDENTIALS"
    refresh = await gql(client, REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert refresh["data"]["tokenRefresh"]["errors"][0]["code"] == "INVALID_REFRESH_TOKEN"
    # The address is free again: PII was erased, not kept under a flag.
    assert (await register(client))["errors"] == []
