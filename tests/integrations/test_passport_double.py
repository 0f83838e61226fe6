"""The passport double over plain HTTP: accounts, the control endpoints and the faults.

The client's view of the API is in test_passport_client.py; these speak HTTP themselves, as
a newcomer's script or another language's client would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.integrations.passport import double as double_module
from app.integrations.passport import uid_for
from tests.passport_server import PassportDouble

ADMIN, MEMBER, OTHER = "+79000000001", "+79000000002", "+79000000003"


@pytest.fixture(scope="module")
def double() -> Iterator[PassportDouble]:
    with PassportDouble() as double:
        yield double


@pytest.fixture
def passport(double: PassportDouble) -> PassportDouble:
    double.reset(data=True)
    return double


@pytest.fixture
async def http(passport: PassportDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(passport) as client:
        yield client


def api_client(passport: PassportDouble, **options: Any) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {passport.token}"}
    return httpx.AsyncClient(base_url=passport.url, headers=headers, **options)


async def find(http: httpx.AsyncClient, phone: str) -> httpx.Response:
    return await http.get("/v1/accounts", params={"phone": phone})


async def create_family(http: httpx.AsyncClient, phone: str, key: str = "k") -> str:
    uid = (await find(http, phone)).json()["uid"]
    response = await http.post("/v1/families", json={"admin_uid": uid}, headers=key_header(key))
    assert response.status_code == 201, response.text
    family_id: str = response.json()["family_id"]
    return family_id


async def add(http: httpx.AsyncClient, family_id: str, phone: str) -> httpx.Response:
    """PUT the phone's account (looked up before) into the family."""
    return await http.put(f"/v1/families/{family_id}/members/{uid_for(phone)}")


def key_header(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def members(passport: PassportDouble, family_id: str) -> list[str]:
    [family] = [f for f in passport.state.snapshot()["families"] if f["family_id"] == family_id]
    return [m["uid"] for m in family["members"]]


# Accounts


async def test_every_valid_phone_has_a_stable_account(http: httpx.AsyncClient) -> None:
    first, again = await find(http, ADMIN), await find(http, ADMIN)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"uid": uid_for(ADMIN), "phone": ADMIN}
    assert (await find(http, "89001234567")).json() == {"error": "invalid_phone"}


async def test_phones_without_an_account() -> None:
    with PassportDouble(without=[OTHER]) as passport:
        async with api_client(passport) as http:
            missing = await find(http, OTHER)
            assert (missing.status_code, missing.json()) == (404, {"error": "account_not_found"})
            assert (await find(http, ADMIN)).status_code == 200
            registered = await http.post("/_double/accounts", json={"phone": OTHER})
            assert registered.status_code == 201
            assert (await find(http, OTHER)).json() == registered.json()


async def test_without_auto_accounts_only_registered_ones_exist() -> None:
    with PassportDouble(auto_accounts=False) as passport:
        async with api_client(passport) as http:
            assert (await find(http, ADMIN)).status_code == 404
            uid = passport.add_account(ADMIN)
            assert (await find(http, ADMIN)).json() == {"uid": uid, "phone": ADMIN}
            bad = await http.post("/_double/accounts", json={"phone": "nope"})
            assert bad.status_code == 400


async def test_api_calls_need_the_token(passport: PassportDouble) -> None:
    async with httpx.AsyncClient(base_url=passport.url) as anonymous:
        response = await find(anonymous, ADMIN)
        assert (response.status_code, response.json()) == (401, {"error": "unauthorized"})
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/_double/state")).status_code == 200


async def test_create_needs_an_idempotency_key(http: httpx.AsyncClient) -> None:
    uid = (await find(http, ADMIN)).json()["uid"]
    response = await http.post("/v1/families", json={"admin_uid": uid})
    assert (response.status_code, response.json()) == (400, {"error": "idempotency_key_required"})
    reused = await http.post("/v1/families", json={"admin_uid": uid}, headers=key_header("a"))
    assert reused.status_code == 201
    other = (await find(http, OTHER)).json()["uid"]
    clash = await http.post("/v1/families", json={"admin_uid": other}, headers=key_header("a"))
    assert (clash.status_code, clash.json()) == (422, {"error": "idempotency_key_reused"})


# Faults


async def test_fail_next_changes_nothing(http: httpx.AsyncClient, passport: PassportDouble) -> None:
    family_id = await create_family(http, ADMIN)
    await find(http, MEMBER)
    passport.faults(fail_next=2, fail_status=500)
    for _ in range(2):
        failed = await add(http, family_id, MEMBER)
        assert (failed.status_code, failed.json()) == (500, {"error": "injected_fault"})
    assert members(passport, family_id) == [uid_for(ADMIN)]
    assert (await add(http, family_id, MEMBER)).status_code == 200


async def test_fail_after_work_does_the_work_and_loses_the_answer(
    http: httpx.AsyncClient, passport: PassportDouble
) -> None:
    family_id = await create_family(http, ADMIN)
    await find(http, MEMBER)
    passport.faults(fail_next=1, fail_after_work=True, operations=["add_member"])
    assert (await add(http, family_id, MEMBER)).status_code == 503
    assert members(passport, family_id) == [uid_for(ADMIN), uid_for(MEMBER)]
    assert (await add(http, family_id, MEMBER)).status_code == 200  # once: the fault is spent


async def test_fail_after_members(http: httpx.AsyncClient, passport: PassportDouble) -> None:
    family_id = await create_family(http, ADMIN)
    phones = [f"+7900200000{n}" for n in range(4)]
    for phone in phones:
        await find(http, phone)
    passport.faults(fail_after_members=2)
    answers = [(await add(http, family_id, phone)).status_code for phone in phones]
    assert answers == [200, 200, 503, 503]
    assert len(members(passport, family_id)) == 3
    assert (await find(http, OTHER)).status_code == 200  # other operations are not affected
    passport.reset()
    assert (await add(http, family_id, phones[2])).status_code == 200


async def test_operations_limit_the_faults(
    http: httpx.AsyncClient, passport: PassportDouble
) -> None:
    passport.faults(fail_next=1, operations=["get_family"])
    assert (await find(http, ADMIN)).status_code == 200
    assert (await http.get("/v1/families/fam-x")).status_code == 503
    assert (await http.get("/v1/families/fam-x")).status_code == 404


async def test_latency(http: httpx.AsyncClient, passport: PassportDouble) -> None:
    passport.faults(latency_ms=150)
    started = time.monotonic()
    assert (await find(http, ADMIN)).status_code == 200
    assert time.monotonic() - started >= 0.15


async def test_timeout_next_hangs_without_doing_the_work(passport: PassportDouble) -> None:
    async with api_client(passport, timeout=0.2) as http:
        family_id = await create_family(http, ADMIN)
        await find(http, MEMBER)
        passport.faults(timeout_next=1)
        with pytest.raises(httpx.ReadTimeout):
            await add(http, family_id, MEMBER)
        assert members(passport, family_id) == [uid_for(ADMIN)]
        assert (await add(http, family_id, MEMBER)).status_code == 200
    assert [c["status"] for c in passport.calls("add_member")] == [None, 200]


async def test_reset(http: httpx.AsyncClient, passport: PassportDouble) -> None:
    await create_family(http, ADMIN)
    passport.faults(fail_next=5)
    assert (await http.post("/_double/reset")).status_code == 204
    assert (await find(http, MEMBER)).status_code == 200  # faults gone, data kept
    assert len(passport.state.snapshot()["families"]) == 1
    assert passport.calls()
    assert (await http.post("/_double/reset", json={"calls": True})).status_code == 204
    assert passport.calls() == []
    assert (await http.post("/_double/reset", json={"data": True})).status_code == 204
    assert passport.state.snapshot() == {"accounts": [], "families": []}


# The control endpoints


async def test_faults_endpoint(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/_double/faults", json={"fail_next": 2, "operations": ["add_member"]}
    )
    assert response.status_code == 200
    assert response.json() == {
        "latency_ms": 0,
        "fail_status": 503,
        "fail_next": 2,
        "timeout_next": 0,
        "fail_after_members": None,
        "fail_after_work": False,
        "operations": ["add_member"],
    }
    merged = await http.post("/_double/faults", json={"latency_ms": 5})
    assert merged.json()["fail_next"] == 2
    for bad in ({"fail_next": -1}, {"operations": ["nope"]}, {"fail_status": 99}, {"x": 1}):
        rejected = await http.post("/_double/faults", json=bad)
        assert rejected.status_code == 400, bad


async def test_calls_and_state_endpoints(http: httpx.AsyncClient) -> None:
    family_id = await create_family(http, ADMIN)
    await http.delete(f"/v1/families/{family_id}/members/{uid_for(MEMBER)}")
    calls = (await http.get("/_double/calls")).json()
    assert [(c["operation"], c["method"], c["status"]) for c in calls] == [
        ("find_account", "GET", 200),
        ("create_family", "POST", 201),
        ("remove_member", "DELETE", 204),
    ]
    only = (await http.get("/_double/calls", params={"operation": "create_family"})).json()
    assert only == [
        {"operation": "create_family", "method": "POST", "path": "/v1/families", "status": 201}
    ]
    state = (await http.get("/_double/state")).json()
    assert state["accounts"] == [{"uid": uid_for(ADMIN), "phone": ADMIN}]
    assert state["families"][0]["members"] == [
        {"uid": uid_for(ADMIN), "phone": ADMIN, "role": "admin"}
    ]


# serve()


async def test_serve_runs_the_double_with_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    started: dict[str, Any] = {}

    def run(app: Any, **options: Any) -> None:
        started.update(options, app=app)

    monkeypatch.setattr(double_module.uvicorn, "run", run)
    double_module.serve(port=9999, token="dev", without=[OTHER])
    assert (started["host"], started["port"]) == ("127.0.0.1", 9999)
    transport = httpx.ASGITransport(app=started["app"])
    async with httpx.AsyncClient(
        transport=transport, base_url="http://double", headers={"Authorization": "Bearer dev"}
    ) as http:
        assert (await find(http, ADMIN)).status_code == 200
        assert (await find(http, OTHER)).status_code == 404
