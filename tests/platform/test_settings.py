"""Settings: embedded defaults and the production profile."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings

STRONG_SECRET = "prod-secret-0123456789abcdef0123456789abcdef"


def test_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "ENGAGE_ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///./engage.db"
    assert settings.redis_url is None
    assert settings.graphiql_enabled and settings.introspection_enabled
    assert not settings.mask_errors_enabled


def test_production_profile_locks_the_api_down() -> None:
    settings = Settings(_env_file=None, ENGAGE_ENV="production", JWT_SECRET=STRONG_SECRET)
    assert not settings.graphiql_enabled
    assert not settings.introspection_enabled
    assert settings.mask_errors_enabled


def test_production_refuses_the_default_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="refuses the default JWT_SECRET"):
        Settings(_env_file=None, ENGAGE_ENV="production")


def test_production_accepts_an_external_issuer_instead_of_a_secret() -> None:
    settings = Settings(
        _env_file=None,
        ENGAGE_ENV="production",
        JWT_JWKS_URL="https://idp.example/jwks",
        JWT_ALGORITHM="RS256",
    )
    assert settings.jwt_jwks_url


def test_short_hmac_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(_env_file=None, JWT_SECRET="short")
