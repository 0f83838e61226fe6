"""The README's first run, on real processes: migrate, demo, serve, register → login → viewer."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, _create_pg_database, _drop_pg_database
from tests.e2e.conftest import LiveServerFactory, _engage_command, _server_env

pytestmark = pytest.mark.e2e

REGISTER = """mutation R($input: RegisterInput!) {
  register(input: $input) { user { email } errors { code } } }"""
LOGIN = """mutation L($input: LoginInput!) {
  login(input: $input) { tokens { accessToken } errors { code } } }"""
VIEWER = "query V { viewer { user { email roles } } }"


def _run_engage(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_engage_command(), *args],
        env=_server_env(workdir, env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _engage(workdir: Path, env: dict[str, str], *args: str) -> str:
    result = _run_engage(workdir, env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _post(
    base_url: str, query: str, variables: dict | None = None, token: str | None = None
) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _first_run(base_url: str) -> None:
    credentials = {"email": "newcomer@example.com", "password": "a-long-passphrase"}
    registered = _post(base_url, REGISTER, {"input": credentials})
    assert registered["data"]["register"]["errors"] == []
    logged_in = _post(
        base_url,
        LOGIN,
        {"input": {"login": credentials["email"], "password": credentials["password"]}},
    )
    token = logged_in["data"]["login"]["tokens"]["accessToken"]
    viewer = _post(base_url, VIEWER, token=token)
    assert viewer["data"]["viewer"]["user"] == {"email": "newcomer@example.com", "roles": ["USER"]}


DEMO_PROMOTION = "query { viewer { promotion { eligible canStart promotion { key } } } }"


def test_embedded_first_run(tmp_path: Path, live_server_factory: LiveServerFactory) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'engage.db'}"}
    _engage(tmp_path, env, "migrate")
    demo = _engage(tmp_path, env, "demo", "--once")
    assert "ADMIN access token" in demo and "SERVICE token" in demo
    assert "already loaded" in _engage(tmp_path, env, "demo", "--once")
    base_url = live_server_factory(env)
    _first_run(base_url)
    admin_token = demo.split("ADMIN access token")[1].split("Bearer ")[1].split()[0]
    admin = _post(base_url, VIEWER, token=admin_token)
    assert admin["data"]["viewer"]["user"]["roles"] == ["USER", "ADMIN"]
    assert "newcomer-mx" in demo  # the promotion path the demo prints works for vera
    vera = _post(
        base_url,
        LOGIN,
        {"input": {"login": "vera@example.com", "password": "engage-demo-password"}},
    )["data"]["login"]["tokens"]["accessToken"]
    promotion = _post(base_url, DEMO_PROMOTION, token=vera)["data"]["viewer"]["promotion"]
    assert promotion == {"eligible": True, "canStart": True, "promotion": {"key": "newcomer-mx"}}
    _demo_family_ride(base_url, demo)
    ready = httpx.get(f"{base_url}/readyz", timeout=5)
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}
    metrics = httpx.get(f"{base_url}/metrics", timeout=5).text
    assert 'engage_graphql_operations_total{operation="V",type="query"}' in metrics


def _demo_family_ride(base_url: str, demo: str) -> None:
    """The ride check the demo prints, as printed, with the SERVICE token it printed."""
    service = demo.split("SERVICE token")[1].split("Bearer ")[1].split()[0]
    check = next(line.strip() for line in demo.splitlines() if "familyRideCheck" in line)
    first = _post(base_url, check, token=service)["data"]["familyRideCheck"]
    assert first["available"] is True and first["errors"] == [], first
    again = _post(base_url, check.replace("demo-ride-1", "demo-ride-2"), token=service)
    assert again["data"]["familyRideCheck"]["reason"] == "LIMIT_EXCEEDED"


def test_production_shape_first_run(tmp_path: Path, live_server_factory: LiveServerFactory) -> None:
    database_url = asyncio.run(_create_pg_database())
    try:
        env = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
        _engage(tmp_path, env, "migrate")
        base_url = live_server_factory(env)
        _first_run(base_url)
        ready = httpx.get(f"{base_url}/readyz", timeout=5)
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        asyncio.run(_drop_pg_database(database_url))


def test_cli_bootstraps_admins_and_service_tokens(
    tmp_path: Path, live_server_factory: LiveServerFactory
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'engage.db'}"}
    _engage(tmp_path, env, "migrate")
    _engage(
        tmp_path,
        env,
        "admin",
        "create",
        "--email",
        "Boss@Example.com",
        "--password",
        "boss-passphrase-1",
    )
    secret = _engage(tmp_path, env, "token", "create", "--name", "order-system").strip()
    assert secret.startswith("eng_svc_")
    duplicate = _run_engage(tmp_path, env, "token", "create", "--name", "order-system")
    assert duplicate.returncode == 2
    assert "exists already" in duplicate.stderr

    base_url = live_server_factory(env)
    login = _post(
        base_url, LOGIN, {"input": {"login": "boss@example.com", "password": "boss-passphrase-1"}}
    )
    token = login["data"]["login"]["tokens"]["accessToken"]
    assert _post(base_url, VIEWER, token=token)["data"]["viewer"]["user"]["roles"] == [
        "USER",
        "ADMIN",
    ]
    as_service = _post(base_url, VIEWER, token=secret)
    assert as_service["errors"][0]["extensions"]["code"] == "FORBIDDEN"
