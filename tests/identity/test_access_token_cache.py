"""Access-token verification keeps the outcome of the signature check per token, never the
verdict on time: a kept token still expires, a failure is never kept, the cache is bounded."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from app.auth import AccessTokenCodec, TokenError
from tests.conftest import TEST_JWT_SECRET
from tests.conftest import test_settings as make_settings


def _codec(**overrides: Any) -> AccessTokenCodec:
    return AccessTokenCodec(make_settings(**overrides))


def _token(codec: AccessTokenCodec, **changes: Any) -> str:
    settings = codec._settings
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
        "roles": ["USER"],
    }
    claims.update(changes)
    return jwt.encode(claims, TEST_JWT_SECRET, "HS256")


def test_a_kept_token_still_expires_on_time() -> None:
    codec = _codec()
    token = codec.issue(uuid.uuid4(), ["USER"])
    claims = codec.verify(token)
    assert codec.verify(token) == claims  # the second answer comes from the cache
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert codec.verify(token, now=expires + 4) == claims  # the 5 s leeway
    with pytest.raises(TokenError) as refused:
        codec.verify(token, now=expires + 6)
    assert refused.value.reason == "EXPIRED"


def test_a_token_not_yet_valid_is_refused_until_it_is() -> None:
    codec = _codec()
    now = int(time.time())
    token = _token(codec, nbf=now + 60)
    with pytest.raises(TokenError) as refused:
        codec.verify(token, now=now)
    assert refused.value.reason == "INVALID"
    assert codec.verify(token, now=now + 60).roles == frozenset({"USER"})


def test_failures_are_never_kept() -> None:
    codec = _codec()
    good = codec.issue(uuid.uuid4(), ["USER"])
    header, payload, _ = good.split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    for _ in range(3):
        with pytest.raises(TokenError) as refused:
            codec.verify(forged)
        assert refused.value.reason == "INVALID"
    assert codec._verified.get(forged) is None


@pytest.mark.parametrize("exp", ["soon", True, None])
def test_a_malformed_expiry_is_invalid(exp: object) -> None:
    codec = _codec()
    token = _token(codec, exp=exp)
    with pytest.raises(TokenError) as refused:
        codec.verify(token)
    assert refused.value.reason == "INVALID"


def test_the_cache_is_bounded_and_can_be_turned_off() -> None:
    codec = _codec(jwt_verify_cache_size=2)
    tokens = [codec.issue(uuid.uuid4(), ["USER"]) for _ in range(3)]
    for token in tokens:
        codec.verify(token)
    kept = [token for token in tokens if codec._verified.get(token) is not None]
    assert kept == tokens[1:]  # the oldest went first
    off = _codec(jwt_verify_cache_size=0)
    token = off.issue(uuid.uuid4(), ["USER"])
    assert off.verify(token).subject == off.verify(token).subject
    assert off._verified.get(token) is None
