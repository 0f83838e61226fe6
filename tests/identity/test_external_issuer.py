"""Trusting an external OIDC issuer's keys (JWKS) by configuration alone."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from app.runtime import Runtime
from tests.conftest import make_client
from tests.factories.identity import create_user
from tests.helpers import gql

ISSUER = "https://idp.example.test/"
AUDIENCE = "engage-mobile"
VIEWER = "query { viewer { user { email roles } } }"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A real HTTP server publishing the issuer's public key as a JWKS document."""
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    document = json.dumps({"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "RS256"}]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(document.encode())

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()


def _token(key: rsa.RSAPrivateKey, kid: str = "key-1", **changes: object) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "idp|42",
        "email": "Ext@Example.com",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(changes)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _external(runtime: Runtime, jwks_url: str) -> dict[str, object]:
    return {
        "jwt_jwks_url": jwks_url,
        "jwt_algorithm": "RS256",
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
    }


async def test_external_token_is_trusted_and_provisions_the_user(
    runtime: Runtime, jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> None:
    async with make_client(runtime, **_external(runtime, jwks_url)) as client:
        first = await gql(client, VIEWER, token=_token(signing_key))
        again = await gql(client, VIEWER, token=_token(signing_key))
    assert first["data"]["viewer"]["user"] == {"email": "ext@example.com", "roles": ["USER"]}
    assert again == first


async def test_external_token_signed_by_another_key_is_refused(
    runtime: Runtime, jwks_url: str
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with make_client(runtime, **_external(runtime, jwks_url)) as client:
        body = await gql(client, VIEWER, token=_token(stranger))
        unknown_kid = await gql(client, VIEWER, token=_token(stranger, kid="nope"))
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": "INVALID"}
    assert unknown_kid["errors"][0]["extensions"]["reason"] == "UNKNOWN_SIGNING_KEY"


async def test_external_token_with_wrong_audience_is_refused(
    runtime: Runtime, jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> None:
    async with make_client(runtime, **_external(runtime, jwks_url)) as client:
        body = await gql(client, VIEWER, token=_token(signing_key, aud="another-app"))
    assert body["errors"][0]["extensions"]["reason"] == "WRONG_AUDIENCE"


async def test_external_email_already_used_locally_is_not_attached(
    runtime: Runtime, jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> None:
    await create_user(runtime, "ext@example.com")
    async with make_client(runtime, **_external(runtime, jwks_url)) as client:
        body = await gql(client, VIEWER, token=_token(signing_key, sub="idp|77"))
    assert body["data"]["viewer"]["user"] == {"email": None, "roles": ["USER"]}
