"""app.integrations.passport's client against the double on loopback (tests/passport_server.py).

httpx.MockTransport appears only where the double cannot help: answers outside the contract
(BAD_RESPONSE), which the double never gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from app.integrations.passport import (
    BreakerState,
    CircuitBreaker,
    PassportAccount,
    PassportClient,
    PassportError,
    PassportErrorCode,
    PassportFamily,
    PassportMember,
    passport_client,
    uid_for,
)
from tests.conftest import test_settings as make_settings
from tests.passport_server import PassportDouble
from tests.smtp_server import refused_port

Code = PassportErrorCode
ADMIN, MEMBER, OTHER = "+79000000001", "+79000000002", "+79000000003"


@pytest.fixture(scope="module")
def double() -> Iterator[PassportDouble]:
    with PassportDouble() as double:
        yield double


@pytest.fixture
def passport(double: PassportDouble) -> PassportDouble:
    """The module's double, emptied: one server start per module, not per test."""
    double.reset(data=True)
    return double


@pytest.fixture
async def client(passport: PassportDouble) -> AsyncIterator[PassportClient]:
    async with passport.client() as client:
        yield client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def family(client: PassportClient, *phones: str, key: str = "k") -> PassportFamily:
    """A family of phones[0] with the others as members."""
    admin, *members = [await account(client, phone) for phone in phones]
    created = await client.create_family(admin.uid, idempotency_key=key)
    for member in members:
        created = await client.add_member(created.family_id, member.uid)
    return created


async def account(client: PassportClient, phone: str) -> PassportAccount:
    found = await client.find_account(phone)
    assert found is not None
    return found


async def error_of(call: Awaitable[Any]) -> PassportError:
    with pytest.raises(PassportError) as caught:
        await call
    return caught.value


def statuses(passport: PassportDouble, operation: str) -> list[int | None]:
    return [call["status"] for call in passport.calls(operation)]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# Happy paths


async def test_find_account_returns_the_phones_account(client: PassportClient) -> None:
    assert await client.find_account(ADMIN) == PassportAccount(uid_for(ADMIN), ADMIN)


async def test_a_phone_without_an_account_is_none() -> None:
    with PassportDouble(without=[OTHER]) as passport:
        async with passport.client() as client:
            assert await client.find_account(OTHER) is None


async def test_create_add_read_and_delete_a_family(
    client: PassportClient, passport: PassportDouble
) -> None:
    admin, member = await account(client, ADMIN), await account(client, MEMBER)
    assert await client.family_of(admin.uid) is None

    created = await client.create_family(admin.uid, idempotency_key="create-1")
    assert created.admin_uid == admin.uid
    assert created.members == (PassportMember(admin.uid, ADMIN, "admin"),)

    grown = await client.add_member(created.family_id, member.uid)
    assert grown.member(member.uid) == PassportMember(member.uid, MEMBER, "member")
    assert await client.get_family(created.family_id) == grown
    assert await client.family_of(member.uid) == grown
    assert await client.add_member(created.family_id, member.uid) == grown  # idempotent

    await client.delete_family(created.family_id)
    assert await client.get_family(created.family_id) is None
    assert await client.family_of(admin.uid) is None
    await client.delete_family(created.family_id)  # a deleted family is done
    assert passport.state.snapshot()["families"] == []


async def test_remove_and_leave(client: PassportClient) -> None:
    created = await family(client, ADMIN, MEMBER, OTHER)
    await client.remove_member(created.family_id, uid_for(MEMBER))
    await client.remove_member(created.family_id, uid_for(MEMBER))  # not a member: done
    await client.leave_family(created.family_id, uid_for(OTHER))
    now = await client.get_family(created.family_id)
    assert now is not None and [m.uid for m in now.members] == [uid_for(ADMIN)]


async def test_family_of_an_unknown_uid_is_none(client: PassportClient) -> None:
    assert await client.family_of("uid-nobody") is None


async def test_the_same_idempotency_key_creates_one_family(
    client: PassportClient, passport: PassportDouble
) -> None:
    admin = await account(client, ADMIN)
    first = await client.create_family(admin.uid, idempotency_key="same")
    second = await client.create_family(admin.uid, idempotency_key="same")
    assert first == second
    assert len(passport.state.snapshot()["families"]) == 1
    assert statuses(passport, "create_family") == [201, 201]


# Error mapping


async def test_not_found(client: PassportClient) -> None:
    created = await family(client, ADMIN)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.add_member("fam-nobody", uid_for(MEMBER)),
        lambda: client.add_member(created.family_id, "uid-nobody"),
        lambda: client.remove_member("fam-nobody", uid_for(MEMBER)),
        lambda: client.leave_family(created.family_id, uid_for(MEMBER)),  # not a member
        lambda: client.leave_family("fam-nobody", uid_for(MEMBER)),
        lambda: client.create_family("uid-nobody", idempotency_key="k2"),
    ]
    for call in calls:
        error = await error_of(call())
        assert (error.code, error.status, error.transient) == (Code.NOT_FOUND, 404, False)


async def test_already_in_family_names_the_family(client: PassportClient) -> None:
    first = await family(client, ADMIN, MEMBER, key="a")
    second = await family(client, OTHER, key="b")
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.add_member(second.family_id, uid_for(MEMBER)),
        lambda: client.create_family(uid_for(MEMBER), idempotency_key="c"),
    ]
    for call in calls:
        error = await error_of(call())
        assert (error.code, error.status, error.family_id) == (
            Code.ALREADY_IN_FAMILY,
            409,
            first.family_id,
        )


async def test_a_ninth_member_is_family_full(
    client: PassportClient, passport: PassportDouble
) -> None:
    full = await family(client, *(f"+7900100000{n}" for n in range(8)))
    assert len(full.members) == 8
    newcomer = await account(client, OTHER)
    error = await error_of(client.add_member(full.family_id, newcomer.uid))
    assert (error.code, error.status) == (Code.FAMILY_FULL, 422)
    assert statuses(passport, "add_member")[-1:] == [422]  # not retried


async def test_the_admin_cannot_be_removed_nor_leave(client: PassportClient) -> None:
    created = await family(client, ADMIN, MEMBER)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.remove_member(created.family_id, created.admin_uid),
        lambda: client.leave_family(created.family_id, created.admin_uid),
    ]
    for call in calls:
        error = await error_of(call())
        assert (error.code, error.status) == (Code.CANNOT_REMOVE_ADMIN, 409)


async def test_a_wrong_token_is_unauthorized_and_not_retried(passport: PassportDouble) -> None:
    async with passport.client(token="wrong") as client:
        error = await error_of(client.find_account(ADMIN))
    assert (error.code, error.status, error.transient) == (Code.UNAUTHORIZED, 401, False)
    assert statuses(passport, "find_account") == [401]
    assert "wrong" not in repr(client) + str(error)


async def test_5xx_after_the_retries_is_unavailable(
    client: PassportClient, passport: PassportDouble
) -> None:
    passport.faults(fail_next=10, fail_status=502)
    error = await error_of(client.find_account(ADMIN))
    assert (error.code, error.status, error.transient) == (Code.UNAVAILABLE, 502, True)
    assert statuses(passport, "find_account") == [502, 502, 502]


async def test_a_refused_connection_is_unavailable() -> None:
    breaker = CircuitBreaker(failures=5, reset_seconds=30)
    url = f"http://127.0.0.1:{refused_port()}"
    async with PassportClient(
        url, "t", timeout=0.5, retries=1, retry_base_seconds=0.01, breaker=breaker
    ) as client:
        error = await error_of(client.find_account(ADMIN))
    assert (error.code, error.status) == (Code.UNAVAILABLE, None)


# Retries


IDEMPOTENT_CALLS: list[tuple[str, Callable[[PassportClient, PassportFamily], Any], int]] = [
    ("find_account", lambda c, f: c.find_account(ADMIN), 200),
    ("family_of", lambda c, f: c.family_of(f.admin_uid), 200),
    ("get_family", lambda c, f: c.get_family(f.family_id), 200),
    ("add_member", lambda c, f: c.add_member(f.family_id, uid_for(OTHER)), 200),
    ("remove_member", lambda c, f: c.remove_member(f.family_id, uid_for(MEMBER)), 204),
    ("delete_family", lambda c, f: c.delete_family(f.family_id), 204),
    ("create_family", lambda c, f: c.create_family(uid_for(OTHER), idempotency_key="x"), 201),
]


@pytest.mark.parametrize(("operation", "call", "status"), IDEMPOTENT_CALLS)
async def test_idempotent_calls_retry_5xx(
    client: PassportClient,
    passport: PassportDouble,
    operation: str,
    call: Callable[[PassportClient, PassportFamily], Any],
    status: int,
) -> None:
    created = await family(client, ADMIN, MEMBER)
    await account(client, OTHER)
    passport.faults(fail_next=2, operations=[operation])
    await call(client, created)
    assert statuses(passport, operation)[-3:] == [503, 503, status]


async def test_create_family_retried_after_a_lost_answer_creates_one_family(
    client: PassportClient, passport: PassportDouble
) -> None:
    admin = await account(client, ADMIN)
    passport.faults(fail_next=1, fail_after_work=True, operations=["create_family"])
    created = await client.create_family(admin.uid, idempotency_key="lost")
    assert statuses(passport, "create_family") == [503, 201]
    assert [f["family_id"] for f in passport.state.snapshot()["families"]] == [created.family_id]


async def test_leave_is_not_retried_after_a_5xx(
    client: PassportClient, passport: PassportDouble
) -> None:
    created = await family(client, ADMIN, MEMBER)
    passport.faults(fail_next=1, operations=["leave_family"])
    error = await error_of(client.leave_family(created.family_id, uid_for(MEMBER)))
    assert error.code is Code.UNAVAILABLE
    assert statuses(passport, "leave_family") == [503]
    # Even when the leave happened and only its answer was lost:
    passport.faults(fail_next=1, fail_after_work=True)
    error = await error_of(client.leave_family(created.family_id, uid_for(MEMBER)))
    assert error.code is Code.UNAVAILABLE
    assert statuses(passport, "leave_family") == [503, 503]
    assert await client.family_of(uid_for(MEMBER)) is None


async def test_leave_is_retried_when_nothing_was_sent() -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    before = sample("engage_passport_errors_total", operation="leave_family", code="unavailable")
    breaker = CircuitBreaker(failures=5, reset_seconds=30)
    async with PassportClient(
        url, "t", timeout=0.5, retries=2, retry_base_seconds=0.01, breaker=breaker
    ) as client:
        error = await error_of(client.leave_family("fam-1", "uid-1"))
    assert error.code is Code.UNAVAILABLE
    after = sample("engage_passport_errors_total", operation="leave_family", code="unavailable")
    assert after - before == 3  # three tries, each refused


async def test_a_timeout_is_retried_for_reads(passport: PassportDouble) -> None:
    passport.faults(timeout_next=1)
    async with passport.client(timeout=0.2) as client:
        assert await client.find_account(ADMIN) is not None
        assert statuses(passport, "find_account") == [None, 200]  # the first still hangs
        passport.faults(timeout_next=3)
        error = await error_of(client.find_account(ADMIN))
        assert (error.code, error.transient) == (Code.TIMEOUT, True)
        passport.faults(timeout_next=10, operations=["leave_family"])
        assert (await error_of(client.leave_family("fam-1", "uid-1"))).code is Code.TIMEOUT
    assert len(passport.calls("find_account")) == 5
    assert len(passport.calls("leave_family")) == 1  # a read timeout is not retried


async def test_4xx_is_never_retried(client: PassportClient, passport: PassportDouble) -> None:
    created = await family(client, ADMIN)
    await error_of(client.add_member(created.family_id, "uid-nobody"))
    assert statuses(passport, "add_member") == [404]


# Answers outside the contract


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> PassportClient:
    return PassportClient(
        "http://passport.test",
        "t",
        timeout=1,
        retries=2,
        retry_base_seconds=0,
        breaker=CircuitBreaker(failures=5, reset_seconds=30),
        transport=httpx.MockTransport(handler),
    )


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>ok</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"uid": 5, "phone": ADMIN}),
        httpx.Response(201, json={"uid": "u", "phone": ADMIN}),
        httpx.Response(404, text="Not Found"),  # a wrong path, not "no account"
        httpx.Response(302, headers={"Location": "/login"}),
        httpx.Response(418, json={"error": "teapot"}),
        httpx.Response(409, json={"error": "something_else"}),
    ],
)
async def test_unexpected_answers_are_bad_response(response: httpx.Response) -> None:
    tries: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tries.append(request)
        return response

    async with mock_client(handler) as client:
        error = await error_of(client.find_account(ADMIN))
    assert (error.code, error.transient) == (Code.BAD_RESPONSE, False)
    assert len(tries) == 1


async def test_a_family_with_a_bad_member_is_bad_response() -> None:
    body = {"family_id": "f", "admin_uid": "a", "members": [{"uid": "a", "phone": "p"}]}
    async with mock_client(lambda request: httpx.Response(200, json=body)) as client:
        assert (await error_of(client.get_family("f"))).code is Code.BAD_RESPONSE


async def test_requests_carry_the_token_and_quoted_ids() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with mock_client(handler) as client:
        await client.remove_member("fam 1", "uid/2")
        await error_of(client.find_account("+7 900"))
    assert seen[0].headers["authorization"] == "Bearer t"
    assert seen[0].url.raw_path == b"/v1/families/fam%201/members/uid%2F2"
    assert seen[1].url.params["phone"] == "+7 900"
    assert b"phone=%2B7" in seen[1].url.query  # a raw "+" would arrive as a space


async def test_empty_ids_are_a_caller_bug(client: PassportClient) -> None:
    with pytest.raises(ValueError, match="empty"):
        await client.get_family("")


# The circuit breaker


async def test_the_circuit_opens_then_fails_fast(passport: PassportDouble) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, reset_seconds=30, clock=clock)
    passport.faults(fail_next=100)
    async with passport.client(breaker=breaker) as client:
        for _ in range(2):
            assert (await error_of(client.find_account(ADMIN))).code is Code.UNAVAILABLE
        assert breaker.state is BreakerState.OPEN
        assert sample("engage_passport_circuit_open") == 1
        error = await error_of(client.find_account(ADMIN))
    assert (error.code, error.transient) == (Code.CIRCUIT_OPEN, True)
    assert len(passport.calls()) == 6  # 2 calls of 3 tries, nothing for the third call


async def test_a_half_open_circuit_closes_on_success_and_reopens_on_failure(
    passport: PassportDouble,
) -> None:
    breaker = CircuitBreaker(failures=1, reset_seconds=0.05)
    passport.faults(fail_next=3)
    async with passport.client(breaker=breaker) as client:
        await error_of(client.find_account(ADMIN))
        assert breaker.state is BreakerState.OPEN
        await asyncio.sleep(0.06)
        assert breaker.state is BreakerState.HALF_OPEN
        passport.faults(fail_next=3)
        await error_of(client.find_account(ADMIN))  # the trial fails: open again
        assert breaker.state is BreakerState.OPEN
        assert (await error_of(client.find_account(ADMIN))).code is Code.CIRCUIT_OPEN
        await asyncio.sleep(0.06)
        assert await client.find_account(ADMIN) is not None
    assert breaker.state is BreakerState.CLOSED
    assert sample("engage_passport_circuit_open") == 0


async def test_one_trial_at_a_time(passport: PassportDouble) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=30, clock=clock)
    passport.faults(fail_next=3)
    async with passport.client(breaker=breaker) as client:
        await error_of(client.find_account(ADMIN))
        passport.reset(calls=True)
        clock.now += 30
        passport.faults(latency_ms=100)
        results = await asyncio.gather(
            *(client.find_account(ADMIN) for _ in range(5)), return_exceptions=True
        )
    assert sum(isinstance(r, PassportAccount) for r in results) == 1
    assert all(r.code is Code.CIRCUIT_OPEN for r in results if isinstance(r, PassportError))
    assert len(passport.calls()) == 1
    assert breaker.state is BreakerState.CLOSED


async def test_4xx_answers_keep_the_circuit_closed(passport: PassportDouble) -> None:
    breaker = CircuitBreaker(failures=2, reset_seconds=30)
    async with passport.client(breaker=breaker) as guarded:
        created = await family(guarded, ADMIN)
        for _ in range(3):
            passport.faults(fail_next=3)
            await error_of(guarded.get_family(created.family_id))
            await error_of(guarded.add_member(created.family_id, "uid-nobody"))  # a 404: up
    assert breaker.state is BreakerState.CLOSED


async def test_a_cancelled_call_frees_the_trial(passport: PassportDouble) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=30, clock=clock)
    passport.faults(fail_next=3)
    async with passport.client(breaker=breaker) as client:
        await error_of(client.find_account(ADMIN))
        clock.now += 30
        passport.faults(latency_ms=2000, operations=["get_family"])
        trial = asyncio.create_task(client.get_family("fam-x"))
        await asyncio.sleep(0.05)
        assert (await error_of(client.find_account(ADMIN))).code is Code.CIRCUIT_OPEN
        trial.cancel()
        with pytest.raises(asyncio.CancelledError):
            await trial
        assert breaker.state is BreakerState.HALF_OPEN
        assert await client.find_account(ADMIN) is not None  # the next trial
    assert breaker.state is BreakerState.CLOSED


async def test_a_cancelled_trial_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=10, clock=clock)
    call = breaker.acquire()
    assert call is not None
    breaker.record(call, ok=False)
    clock.now += 10
    trial = breaker.acquire()
    assert trial is not None and breaker.acquire() is None
    breaker.release(trial)
    assert breaker.acquire() is not None


# Metrics


async def test_each_call_is_observed_once_and_each_failed_try_counted(
    client: PassportClient, passport: PassportDouble
) -> None:
    seconds = "engage_passport_request_seconds_count"
    errors = "engage_passport_errors_total"
    ok_before = sample(seconds, operation="find_account", outcome="ok")
    failed_before = sample(seconds, operation="find_account", outcome="unavailable")
    tries_before = sample(errors, operation="find_account", code="unavailable")

    passport.faults(fail_next=2)
    await client.find_account(ADMIN)  # two failed tries, then an answer
    passport.faults(fail_next=3)
    await error_of(client.find_account(ADMIN))

    assert sample(seconds, operation="find_account", outcome="ok") - ok_before == 1
    assert sample(seconds, operation="find_account", outcome="unavailable") - failed_before == 1
    assert sample(errors, operation="find_account", code="unavailable") - tries_before == 5


async def test_a_none_answer_is_ok_in_the_metrics(client: PassportClient) -> None:
    seconds = "engage_passport_request_seconds_count"
    before = sample(seconds, operation="family_of", outcome="ok")
    assert await client.family_of("uid-nobody") is None
    assert sample(seconds, operation="family_of", outcome="ok") - before == 1


# Construction


def test_passport_client_is_none_unless_configured() -> None:
    assert passport_client(make_settings()) is None


async def test_passport_client_follows_the_settings() -> None:
    settings = make_settings(
        PASSPORT_URL="http://127.0.0.1:1",
        PASSPORT_TOKEN="secret-token",
        PASSPORT_TIMEOUT_SECONDS=1.5,
        PASSPORT_RETRIES=4,
        PASSPORT_RETRY_BASE_SECONDS=0.2,
        PASSPORT_BREAKER_FAILURES=7,
        PASSPORT_BREAKER_RESET_SECONDS=12,
    )
    client = passport_client(settings)
    assert client is not None
    assert (client.base_url, client.timeout, client.retries, client.retry_base_seconds) == (
        "http://127.0.0.1:1",
        1.5,
        4,
        0.2,
    )
    assert (client.breaker.failures, client.breaker.reset_seconds) == (7, 12)
    assert "secret-token" not in repr(client)
    await client.aclose()
