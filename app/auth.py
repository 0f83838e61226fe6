"""Tokens, password hashing and the request's principal.

Access tokens are short-lived JWTs. The built-in issuer signs them with `JWT_SECRET`; setting
`JWT_JWKS_URL` makes engage trust an external OIDC issuer's keys instead (issuer, audience and
algorithm come from settings too). Refresh and service tokens are opaque random strings of
which only a SHA-256 digest is stored.

Passwords are hashed and verified with argon2id (about 0.1 s of CPU each) off the event loop,
in a pool of `PASSWORD_HASH_CONCURRENCY` threads per process (argon2 releases the GIL): a
flood of logins queues for the pool while every other request goes on. An unknown login is
verified against a dummy hash through the same pool, so it queues and takes as long.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.models.identity import Role
from app.settings import Settings

_password_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Verified against when the account is unknown, so both answers take the same time.
_DUMMY_HASH = _password_hasher.hash("engage-timing-equaliser")

T = TypeVar("T")

SERVICE_TOKEN_PREFIX = "eng_svc_"
REFRESH_TOKEN_BYTES = 32


class TokenError(Exception):
    """An access token that can't be trusted: expired, tampered, wrong issuer/audience."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.cache
def _hashing_pool(concurrency: int) -> ThreadPoolExecutor:
    """One pool per process (and size): threads serve every event loop of the process."""
    return ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="engage-argon2")


async def _off_the_loop(settings: Settings, function: Callable[[], T]) -> T:
    pool = _hashing_pool(settings.password_hash_concurrency)
    return await asyncio.get_running_loop().run_in_executor(pool, function)


async def hash_password(password: str, settings: Settings) -> str:
    return await _off_the_loop(settings, lambda: _password_hasher.hash(password))


async def verify_password(password_hash: str | None, password: str, settings: Settings) -> bool:
    """Whether `password` matches; a missing hash is verified against a dummy (same time)."""
    return await _off_the_loop(settings, lambda: _verify(password_hash, password))


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash or _DUMMY_HASH, password) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _password_hasher.check_needs_rehash(password_hash)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user, a service, or nobody."""

    kind: str  # "user" | "service" | "anonymous"
    id: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)
    user_id: uuid.UUID | None = None
    locale: str | None = None  # a user's, for texts in their language

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"

    def has_role(self, role: Role) -> bool:
        return role.value in self.roles

    @property
    def key(self) -> str:
        """A stable string naming the caller (for idempotency records and audit)."""
        return f"{self.kind}:{self.id}"


ANONYMOUS = Principal(kind="anonymous")


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    roles: frozenset[str]
    external: bool
    email: str | None = None


class AccessTokenCodec:
    """Issues built-in access tokens and verifies built-in or external (JWKS) ones."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
            if settings.jwt_jwks_url
            else None
        )
        self._verified = _VerifiedTokens(settings.jwt_verify_cache_size)

    @property
    def external(self) -> bool:
        return self._jwks is not None

    def issue(self, user_id: uuid.UUID, roles: list[str], now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        claims = {
            "iss": self._settings.jwt_issuer,
            "aud": self._settings.jwt_audience,
            "sub": str(user_id),
            "roles": sorted(roles),
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=self._settings.access_token_ttl_seconds),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._settings.jwt_secret, algorithm="HS256")

    async def verify_async(self, token: str) -> AccessClaims:
        """`verify`, off the event loop when it may fetch the issuer's keys over HTTP."""
        if self._jwks is not None and self._verified.get(token) is None:
            return await asyncio.to_thread(self.verify, token)
        return self.verify(token)

    def verify(self, token: str, now: float | None = None) -> AccessClaims:
        """The claims of a token signed by the trusted issuer, for our audience, in force.

        A client sends the same access token with every request until it expires, so the
        outcome of checking its signature, issuer and audience is kept per token (a
        bounded cache, JWT_VERIFY_CACHE_SIZE); the times are checked on every call.
        """
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify_signed(token)
            self._verified.put(token, verified)
        now = time.time() if now is None else now
        if verified.expires_at <= now - _LEEWAY_SECONDS:
            raise TokenError("EXPIRED")
        if verified.not_before > now + _LEEWAY_SECONDS:
            raise TokenError("INVALID")
        return verified.claims

    def _verify_signed(self, token: str) -> _Verified:
        if self._jwks is not None:
            try:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientError as exc:
                raise TokenError("UNKNOWN_SIGNING_KEY") from exc
            except jwt.PyJWTError as exc:
                raise TokenError("MALFORMED") from exc
            algorithms = [self._settings.jwt_algorithm]
        else:
            key, algorithms = self._settings.jwt_secret, ["HS256"]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    # checked on every call by `verify`, so the outcome can be kept
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise TokenError("WRONG_AUDIENCE") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("WRONG_ISSUER") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("INVALID") from exc
        return _Verified(
            claims=_claims(claims, external=self._jwks is not None),
            expires_at=_instant(claims, "exp"),
            not_before=max(_instant(claims, "nbf", 0.0), _instant(claims, "iat", 0.0)),
        )


def _claims(claims: dict[str, Any], *, external: bool) -> AccessClaims:
    roles = claims.get("roles", [])
    return AccessClaims(
        subject=str(claims["sub"]),
        roles=frozenset(r for r in roles if isinstance(r, str))
        if isinstance(roles, list)
        else frozenset(),
        external=external,
        email=claims.get("email"),
    )


def _instant(claims: dict[str, Any], name: str, default: float | None = None) -> float:
    value = claims.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError("INVALID")
    return float(value)


_LEEWAY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Verified:
    claims: AccessClaims
    expires_at: float
    not_before: float


class _VerifiedTokens:
    """Tokens whose signature, issuer and audience were checked: at most `size`, the oldest
    dropped first (tokens expire anyway). Only successes are kept."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[str, _Verified] = {}
        self._lock = threading.Lock()  # JWKS verification runs in threads

    def get(self, token: str) -> _Verified | None:
        return self._entries.get(token)

    def put(self, token: str, verified: _Verified) -> None:
        if self._size <= 0:
            return
        with self._lock:
            while len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
            self._entries[token] = verified
