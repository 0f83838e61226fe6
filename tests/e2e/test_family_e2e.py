"""A family moves to passport on real processes: `engage passport-double` (the newcomer's way
to try the migration) and `engage serve` in the embedded default with PASSPORT_URL set. The
owner's app start schedules the migration, the in-process worker runs it against the double,
and afterwards the members come from passport."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServerFactory, _engage_command, _server_env, free_port
from tests.e2e.test_first_run import _engage, _post

pytestmark = pytest.mark.e2e

REGISTER = """mutation R($input: RegisterInput!) {
  register(input: $input) { user { id } tokens { accessToken } errors { code field } } }"""
CREATE = """mutation { familyCreate(input: {name: "Home"}) {
  account { id } errors { code } } }"""
ADD = """mutation A($a: ID!, $phone: String!) {
  familyMemberAdd(input: {accountId: $a, phone: $phone}) { member { phone } errors { code field } }
}"""
ACCEPT = """mutation A($a: ID!) {
  familyInvitationAccept(input: {accountId: $a}) { account { id } errors { code } } }"""
PAYMENT_METHODS = "query { viewer { paymentMethods { card { id } } } }"
FAMILY = """query { viewer { familyAccounts { passportAccount migrationState
  members { phone role portalStatus } membersError { code } } } }"""
NOTICES = "query { viewer { familyNotifications { kind details } } }"
OWNER, KID, OFFLINE = "+79161110001", "+79161110002", "+79161110003"
TOKEN = "e2e-passport-token"


@pytest.fixture
def passport_double(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "double.log").open("wb")
    process = subprocess.Popen(
        [
            *_engage_command(),
            "passport-double",
            "--port",
            str(port),
            "--token",
            TOKEN,
            "--without",
            OFFLINE,
        ],
        cwd=tmp_path,
        env=_server_env(tmp_path, None),
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "engage passport-double exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail("the passport double did not start")


def _register(base_url: str, phone: str) -> str:
    body = _post(base_url, REGISTER, {"input": {"phone": phone, "password": "a-long-passphrase"}})
    assert body["data"]["register"]["errors"] == [], body
    token: str = body["data"]["register"]["tokens"]["accessToken"]
    return token


def _until_moved(base_url: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        [family] = _post(base_url, FAMILY, token=token)["data"]["viewer"]["familyAccounts"]
        if family["passportAccount"]:
            return dict(family)
        time.sleep(0.2)
    pytest.fail(f"the family did not move: {family}")


def test_a_family_moves_to_passport_on_real_processes(
    tmp_path: Path, passport_double: str, live_server_factory: LiveServerFactory
) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'engage.db'}",
        "PASSPORT_URL": passport_double,
        "PASSPORT_TOKEN": TOKEN,
        "FAMILY_MIGRATION_PERCENT": "100",
    }
    _engage(tmp_path, env, "migrate")
    base_url = live_server_factory(env)
    owner = _register(base_url, OWNER)
    kid = _register(base_url, KID)
    offline = _register(base_url, OFFLINE)
    account = _post(base_url, CREATE, token=owner)["data"]["familyCreate"]["account"]["id"]
    for phone, token in ((KID, kid), (OFFLINE, offline)):
        added = _post(base_url, ADD, {"a": account, "phone": phone}, token=owner)
        assert added["data"]["familyMemberAdd"]["errors"] == [], added
        accepted = _post(base_url, ACCEPT, {"a": account}, token=token)
        assert accepted["data"]["familyInvitationAccept"]["errors"] == [], accepted

    _post(base_url, PAYMENT_METHODS, token=owner)  # the app start: schedules the migration
    family = _until_moved(base_url, owner)

    assert family["migrationState"] == "PARTIAL" and family["membersError"] is None
    members = {m["phone"]: (m["role"], m["portalStatus"]) for m in family["members"]}
    assert members == {
        OWNER: ("OWNER", "LINKED"),
        KID: ("MEMBER", "LINKED"),
        OFFLINE: ("MEMBER", "NO_PORTAL_ACCOUNT"),
    }
    state = httpx.get(f"{passport_double}/_double/state", timeout=5).json()
    [passport_family] = state["families"]
    assert len(passport_family["members"]) == 2
    kinds = {
        n["kind"]: n["details"]
        for n in _post(base_url, NOTICES, token=kid)["data"]["viewer"]["familyNotifications"]
    }
    assert kinds["FAMILY_MOVED"]["role"] == "MEMBER"
    owner_kinds = {
        n["kind"]
        for n in _post(base_url, NOTICES, token=owner)["data"]["viewer"]["familyNotifications"]
    }
    assert owner_kinds == {"FAMILY_MOVED", "MEMBERS_WITHOUT_PORTAL"}
