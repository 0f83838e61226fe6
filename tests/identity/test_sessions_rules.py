"""The session rules at the service level (docs/testing.md, `make mutate`): which counters a
login spends and resets, what each refusal says, what a login stores, what logout revokes,
and how service tokens are named, stored and found."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from app.auth import SERVICE_TOKEN_PREFIX, digest, verify_password
from app.models.base import utcnow
from app.models.identity import RefreshToken, Role, ServiceToken, User, UserStatus
from app.ratelimit import MemoryRateLimiter, RateDecision
from app.runtime import Runtime
from app.services.errors import DomainError
from app.services.identity import sessions
from app.services.identity.users import AccountErrorCode
from tests.factories.identity import PASSWORD, create_user

IP = "203.0.113.7"


class RecordingLimiter(MemoryRateLimiter):
    """The in-process limiter, keeping the calls it got (and refusing the keys told to)."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.hits: list[tuple[str, int, int]] = []
        self.resets: list[str] = []
        self.refuse = refuse

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        self.hits.append((key, limit, window_seconds))
        if key in self.refuse:
            return RateDecision(False, 42)
        return await super().hit(key, limit, window_seconds)

    async def reset(self, key: str) -> None:
        self.resets.append(key)
        await super().reset(key)


async def _login(
    runtime: Runtime, login: str, password: str = PASSWORD, limiter: RecordingLimiter | None = None
) -> sessions.IssuedTokens:
    # As a request does: the unit of work begins with its first statement (after the hashing).
    async with runtime.session_factory() as session:
        issued = await sessions.login(
            session,
            login,
            password,
            IP,
            limiter or RecordingLimiter(),
            runtime.codec,
            runtime.settings,
        )
        await session.commit()
        return issued


async def _refused(runtime: Runtime, login: str, password: str = PASSWORD) -> DomainError:
    with pytest.raises(DomainError) as raised:
        await _login(runtime, login, password)
    return raised.value


async def _set_user(runtime: Runtime, user_id: uuid.UUID, **values: object) -> None:
    async with runtime.session_factory() as session, session.begin():
        await session.execute(update(User).where(User.id == user_id).values(**values))


async def _tokens_of(runtime: Runtime, user_id: uuid.UUID) -> list[RefreshToken]:
    async with runtime.session_factory() as session:
        found = await session.scalars(
            select(RefreshToken).where(RefreshToken.user_id == user_id).order_by(RefreshToken.id)
        )
        return list(found)


# --- login: counters -----------------------------------------------------------------------


async def test_a_login_counts_against_the_address_and_the_account_then_resets_the_account(
    runtime: Runtime,
) -> None:
    await create_user(runtime, "anna@example.com")
    limiter = RecordingLimiter()
    await _login(runtime, "  ANNA@example.com ", limiter=limiter)
    settings = runtime.settings
    window = settings.login_window_seconds
    assert limiter.hits == [
        (f"login:ip:{IP}", settings.login_ip_max_attempts, window),
        ("login:acct:anna@example.com", settings.login_max_attempts, window),
    ]
    assert limiter.resets == ["login:acct:anna@example.com"]  # the address keeps counting


async def test_a_failed_login_resets_no_counter(runtime: Runtime) -> None:
    await create_user(runtime, "anna@example.com")
    limiter = RecordingLimiter()
    with pytest.raises(DomainError):
        await _login(runtime, "anna@example.com", "wrong-password-123", limiter)
    assert len(limiter.hits) == 2
    assert limiter.resets == []


@pytest.mark.parametrize(
    ("login", "account_key"),
    [
        ("+7 (916) 123-45-67", "login:acct:+79161234567"),
        ("  Not An Email  ", "login:acct:not an email"),
        ("X" * 300, "login:acct:" + "x" * 254),
    ],
)
async def test_the_account_counter_is_keyed_by_the_normalized_login(
    runtime: Runtime, login: str, account_key: str
) -> None:
    limiter = RecordingLimiter()
    with pytest.raises(DomainError):
        await _login(runtime, login, limiter=limiter)
    assert [key for key, *_ in limiter.hits] == [f"login:ip:{IP}", account_key]


@pytest.mark.parametrize("refused", ["address", "account"])
async def test_a_spent_counter_refuses_before_the_password_is_checked(
    runtime: Runtime, refused: str
) -> None:
    await create_user(runtime, "anna@example.com")
    keys = {"address": f"login:ip:{IP}", "account": "login:acct:anna@example.com"}
    limiter = RecordingLimiter(refuse=frozenset({keys[refused]}))
    with pytest.raises(sessions.RateLimited) as raised:
        await _login(runtime, "anna@example.com", limiter=limiter)
    error = raised.value
    assert (error.code, error.retry_after) == (AccountErrorCode.RATE_LIMITED, 42)
    assert error.message == "Too many attempts. Try again in 42 seconds."
    assert limiter.hits[-1][0] == keys[refused]  # nothing counted after the refusal
    assert limiter.resets == []


# --- login: who may sign in ----------------------------------------------------------------


async def test_a_login_by_phone_finds_the_account_by_phone(runtime: Runtime) -> None:
    user = await create_user(runtime, "anna@example.com")
    await _set_user(runtime, user.id, phone="+79161234567")
    issued = await _login(runtime, "+7 916 123 45 67")
    assert issued.user.id == user.id
    # The e-mail column is not searched with a phone number, nor the phone with an e-mail.
    await _set_user(runtime, user.id, phone=None, email="+79161234567")
    assert (await _refused(runtime, "+79161234567")).code == AccountErrorCode.INVALID_CREDENTIALS


async def test_a_blocked_account_is_told_so_and_a_deleted_one_is_not(runtime: Runtime) -> None:
    user = await create_user(runtime, "anna@example.com")
    await _set_user(runtime, user.id, status=UserStatus.BLOCKED)
    blocked = await _refused(runtime, "anna@example.com")
    assert (blocked.code, blocked.field) == (AccountErrorCode.ACCOUNT_BLOCKED, "login")
    assert blocked.message == "This account is blocked."
    await _set_user(runtime, user.id, status=UserStatus.DELETED)
    deleted = await _refused(runtime, "anna@example.com")
    assert (deleted.code, deleted.field) == (AccountErrorCode.INVALID_CREDENTIALS, "login")
    assert deleted.message == "Wrong login or password."
    assert await _tokens_of(runtime, user.id) == []


@pytest.mark.parametrize(
    "password", ["wrong-password-123", "", PASSWORD + "x", PASSWORD[:-1], PASSWORD.upper()]
)
async def test_a_wrong_password_is_refused_naming_the_login(
    runtime: Runtime, password: str
) -> None:
    user = await create_user(runtime, "anna@example.com")
    error = await _refused(runtime, "anna@example.com", password)
    assert (error.code, error.field, error.message) == (
        AccountErrorCode.INVALID_CREDENTIALS,
        "login",
        "Wrong login or password.",
    )
    assert await _tokens_of(runtime, user.id) == []


async def test_a_password_over_the_maximum_is_refused_even_if_it_is_the_password(
    runtime: Runtime,
) -> None:
    limit = runtime.settings.password_max_length
    longest = ("correct-horse-" * 100)[:limit]
    user = await create_user(runtime, "anna@example.com", password=longest)
    assert (await _login(runtime, "anna@example.com", longest)).user.id == user.id
    too_long = longest + "b"
    await _set_user(runtime, user.id, password_hash=PasswordHasher().hash(too_long))
    assert (await _refused(runtime, "anna@example.com", too_long)).field == "login"


async def test_a_password_changed_while_it_was_verified_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await create_user(runtime, "anna@example.com")
    other_hash = PasswordHasher().hash("another-password-456")

    async def verify_then_change(hashed: str | None, password: str, settings: object) -> bool:
        verified = await verify_password(hashed, password, runtime.settings)
        await _set_user(runtime, user.id, password_hash=other_hash)  # a reset meanwhile
        return verified

    monkeypatch.setattr(sessions, "verify_password", verify_then_change)
    error = await _refused(runtime, "anna@example.com")
    assert (error.code, error.field, error.message) == (
        AccountErrorCode.INVALID_CREDENTIALS,
        "login",
        "Wrong login or password.",  # the same answer as a wrong password
    )
    assert await _tokens_of(runtime, user.id) == []


async def _stored_hash(runtime: Runtime, user_id: uuid.UUID) -> str:
    async with runtime.session_factory() as session:
        stored = await session.scalar(select(User.password_hash).where(User.id == user_id))
    assert stored is not None
    return stored


async def test_a_hash_with_old_parameters_is_replaced_on_login_and_a_current_one_is_kept(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime, "anna@example.com")
    current = await _stored_hash(runtime, user.id)
    await _login(runtime, "anna@example.com")
    assert await _stored_hash(runtime, user.id) == current

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    await _set_user(runtime, user.id, password_hash=weak)
    await _login(runtime, "anna@example.com")
    rehashed = await _stored_hash(runtime, user.id)
    assert rehashed != weak
    assert not PasswordHasher().check_needs_rehash(rehashed)
    assert await verify_password(rehashed, PASSWORD, runtime.settings)


# --- what a login stores and returns -------------------------------------------------------


async def test_a_login_starts_a_family_of_one_live_token_with_the_configured_lifetimes(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime, "anna@example.com", roles=(Role.USER, Role.ADMIN))
    before = utcnow()
    issued = await _login(runtime, "anna@example.com")
    after = utcnow()
    settings = runtime.settings
    refresh_ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    assert before + refresh_ttl <= issued.refresh_expires_at <= after + refresh_ttl
    assert before + access_ttl <= issued.access_expires_at <= after + access_ttl
    claims = runtime.codec.verify(issued.access_token)
    assert (claims.subject, claims.roles) == (str(user.id), frozenset({"USER", "ADMIN"}))
    [token] = await _tokens_of(runtime, user.id)
    assert token.token_hash == digest(issued.refresh_token)
    assert (token.revoked_at, token.rotated_at) == (None, None)
    assert token.expires_at == issued.refresh_expires_at

    again = await _login(runtime, "anna@example.com")
    families = {t.family_id for t in await _tokens_of(runtime, user.id)}
    assert len(families) == 2  # each login its own family
    assert again.refresh_token != issued.refresh_token


async def test_a_refresh_keeps_the_family_and_spends_the_presented_token(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime, "anna@example.com")
    issued = await _login(runtime, "anna@example.com")
    async with runtime.session_factory() as session, session.begin():
        renewed = await sessions.refresh(
            session, issued.refresh_token, runtime.codec, runtime.settings
        )
    first, second = await _tokens_of(runtime, user.id)
    by_hash = {t.token_hash: t for t in (first, second)}
    spent, live = by_hash[digest(issued.refresh_token)], by_hash[digest(renewed.refresh_token)]
    assert spent.family_id == live.family_id
    assert spent.rotated_at is not None and spent.revoked_at is None
    assert (live.rotated_at, live.revoked_at) == (None, None)


# --- refusing a refresh --------------------------------------------------------------------


async def _refresh_error(runtime: Runtime, refresh_token: str) -> DomainError:
    async with runtime.session_factory() as session, session.begin():
        with pytest.raises(DomainError) as raised:
            await sessions.refresh(session, refresh_token, runtime.codec, runtime.settings)
    return raised.value


def _invalid(error: DomainError) -> tuple[object, ...]:
    return (error.code, error.field, error.message)


INVALID = (AccountErrorCode.INVALID_REFRESH_TOKEN, "refreshToken", "Sign in again.")


@pytest.mark.parametrize(
    "spoil",
    [
        lambda now: {"revoked_at": now, "revoked_reason": "LOGOUT"},
        lambda now: {"revoked_at": now, "rotated_at": now, "revoked_reason": "LOGOUT"},
        lambda now: {"expires_at": now - timedelta(seconds=1)},
    ],
    ids=["revoked", "rotated-and-revoked", "expired"],
)
async def test_a_dead_token_is_invalid_and_revokes_nothing_else(
    runtime: Runtime, spoil: Callable[[object], dict[str, object]]
) -> None:
    user = await create_user(runtime, "anna@example.com")
    dead = await _login(runtime, "anna@example.com")
    await _login(runtime, "anna@example.com")  # another family, alive
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == digest(dead.refresh_token))
            .values(**spoil(utcnow()))
        )
    before = await _states(runtime, user.id)
    assert _invalid(await _refresh_error(runtime, dead.refresh_token)) == INVALID
    assert await _states(runtime, user.id) == before


async def _states(runtime: Runtime, user_id: uuid.UUID) -> list[tuple[object, ...]]:
    tokens = await _tokens_of(runtime, user_id)
    return [(t.token_hash, t.revoked_at, t.rotated_at, t.revoked_reason) for t in tokens]


async def test_a_token_is_spent_before_its_expiry_instant_and_not_at_it(runtime: Runtime) -> None:
    user = await create_user(runtime, "anna@example.com")
    issued = await _login(runtime, "anna@example.com")
    token_hash = digest(issued.refresh_token)
    async with runtime.session_factory() as session, session.begin():
        assert await sessions._spend(session, token_hash, issued.refresh_expires_at) is None
        spent = await sessions._spend(
            session, token_hash, issued.refresh_expires_at - timedelta(microseconds=1)
        )
    [token] = await _tokens_of(runtime, user.id)
    assert spent == (user.id, token.family_id)


async def test_a_token_of_an_account_no_longer_active_is_invalid(runtime: Runtime) -> None:
    user = await create_user(runtime, "anna@example.com")
    issued = await _login(runtime, "anna@example.com")
    await _set_user(runtime, user.id, status=UserStatus.BLOCKED)
    assert _invalid(await _refresh_error(runtime, issued.refresh_token)) == INVALID
    [token] = await _tokens_of(runtime, user.id)
    assert (token.rotated_at, token.revoked_at) == (None, None)


# --- logout --------------------------------------------------------------------------------


async def _logout(runtime: Runtime, user_id: uuid.UUID, refresh_token: str | None) -> None:
    async with runtime.session_factory() as session, session.begin():
        await sessions.logout(session, user_id, refresh_token)


async def _reasons(runtime: Runtime, user_id: uuid.UUID) -> dict[str, str | None]:
    return {t.token_hash: t.revoked_reason for t in await _tokens_of(runtime, user_id)}


async def test_logout_with_a_token_revokes_that_family_only(runtime: Runtime) -> None:
    user = await create_user(runtime, "anna@example.com")
    phone = await _login(runtime, "anna@example.com")
    laptop = await _login(runtime, "anna@example.com")
    await _logout(runtime, user.id, phone.refresh_token)
    assert await _reasons(runtime, user.id) == {
        digest(phone.refresh_token): "LOGOUT",
        digest(laptop.refresh_token): None,
    }


async def test_logout_without_a_token_revokes_every_family_of_the_user_only(
    runtime: Runtime,
) -> None:
    anna = await create_user(runtime, "anna@example.com")
    boris = await create_user(runtime, "boris@example.com")
    first = await _login(runtime, "anna@example.com")
    second = await _login(runtime, "anna@example.com")
    theirs = await _login(runtime, "boris@example.com")
    await _logout(runtime, anna.id, None)
    assert await _reasons(runtime, anna.id) == {
        digest(first.refresh_token): "LOGOUT",
        digest(second.refresh_token): "LOGOUT",
    }
    assert await _reasons(runtime, boris.id) == {digest(theirs.refresh_token): None}


async def test_logout_with_another_users_or_an_unknown_token_revokes_nothing(
    runtime: Runtime,
) -> None:
    anna = await create_user(runtime, "anna@example.com")
    boris = await create_user(runtime, "boris@example.com")
    mine = await _login(runtime, "anna@example.com")
    theirs = await _login(runtime, "boris@example.com")
    await _logout(runtime, anna.id, theirs.refresh_token)
    await _logout(runtime, anna.id, "made-up")
    assert await _reasons(runtime, anna.id) == {digest(mine.refresh_token): None}
    assert await _reasons(runtime, boris.id) == {digest(theirs.refresh_token): None}


async def test_a_second_logout_keeps_the_first_revocation(runtime: Runtime) -> None:
    user = await create_user(runtime, "anna@example.com")
    issued = await _login(runtime, "anna@example.com")
    await _logout(runtime, user.id, issued.refresh_token)
    [first] = await _tokens_of(runtime, user.id)
    await _logout(runtime, user.id, issued.refresh_token)
    await _logout(runtime, user.id, None)
    [second] = await _tokens_of(runtime, user.id)
    assert (second.revoked_at, second.revoked_reason) == (first.revoked_at, "LOGOUT")


# --- service tokens ------------------------------------------------------------------------


async def _create_service_token(
    runtime: Runtime, name: str, roles: list[Role]
) -> tuple[ServiceToken, str]:
    async with runtime.session_factory() as session, session.begin():
        return await sessions.create_service_token(session, name, roles)


async def _find(runtime: Runtime, secret: str) -> ServiceToken | None:
    async with runtime.session_factory() as session:
        return await sessions.find_service_token(session, secret)


async def test_a_service_token_is_stored_by_its_digest_and_found_by_its_secret(
    runtime: Runtime,
) -> None:
    token, secret = await _create_service_token(
        runtime, "  orders-feed ", [Role.SERVICE, Role.ADMIN]
    )
    assert secret.startswith(SERVICE_TOKEN_PREFIX)
    assert (token.name, token.roles) == ("orders-feed", ["SERVICE", "ADMIN"])
    assert token.token_hash == digest(secret) != secret
    found = await _find(runtime, secret)
    assert found is not None and found.id == token.id
    assert await _find(runtime, secret + "x") is None
    other, other_secret = await _create_service_token(runtime, "billing", [Role.SERVICE])
    assert other_secret != secret
    found_other = await _find(runtime, other_secret)
    assert found_other is not None and found_other.id == other.id


async def test_a_revoked_service_token_is_not_found(runtime: Runtime) -> None:
    token, secret = await _create_service_token(runtime, "orders-feed", [Role.SERVICE])
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            update(ServiceToken).where(ServiceToken.id == token.id).values(revoked_at=utcnow())
        )
    assert await _find(runtime, secret) is None


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_a_service_token_name_must_be_1_to_100_characters(
    runtime: Runtime, name: str
) -> None:
    with pytest.raises(ValueError, match=r"^the service token name must be 1 to 100 characters$"):
        await _create_service_token(runtime, name, [Role.SERVICE])
    async with runtime.session_factory() as session:
        assert (await session.scalars(select(ServiceToken))).all() == []


async def test_a_service_token_name_of_100_characters_is_accepted_once(runtime: Runtime) -> None:
    name = "x" * 100
    token, _ = await _create_service_token(runtime, name, [Role.SERVICE])
    assert token.name == name
    with pytest.raises(ValueError, match=f"^a service token named '{name}' exists already$"):
        await _create_service_token(runtime, f" {name} ", [Role.SERVICE])
    async with runtime.session_factory() as session:
        assert len((await session.scalars(select(ServiceToken))).all()) == 1
