"""The passport client: httpx, tenacity retries, a circuit breaker, one error type.

Decisions:

- One `httpx.AsyncClient` per PassportClient, opened at the first call (so building one is
  cheap and needs no event loop) and closed by `aclose()` / `async with`; a closed client
  opens a new connection pool at its next call. A client belongs to one event loop.
- `timeout` bounds each try (connect, read, write and pool wait each), not a whole call: a
  call with `retries` extra tries may last (retries + 1) * timeout plus the backoff.
- Retries (`retries` extra tries, exponential backoff from `retry_base_seconds`, doubling, at
  most 5 s, plus a random jitter of up to `retry_base_seconds`) happen on transient errors
  only: 5xx, timeouts, transport errors. Idempotent calls retry all of them: every GET, the
  PUT and the DELETEs, and create_family, whose Idempotency-Key makes a repeated POST return
  the first answer. `leave_family` is a POST without a key: it retries only when the request
  provably never left this process (httpx.ConnectError, ConnectTimeout, PoolTimeout), never
  after a 5xx or a read timeout, which may hide a leave that happened. A 4xx is never retried.
- The breaker sees one verdict per logical call, after its retries: a transient error is a
  failure; any answer (2xx, 4xx, BAD_RESPONSE) is a success, the server being up. While it is
  open a call fails with CIRCUIT_OPEN without touching the network. The client owns the
  breaker's `on_change` (the circuit gauge and a log line).
- A 404 is read by its error code, not only its status: a method that maps "no account" or
  "no family" to None does so only for the codes the contract names. A 404 without one (a
  wrong PASSPORT_URL path, a proxy's page) is BAD_RESPONSE rather than "nobody is there".
- Other statuses: 401/403 → UNAUTHORIZED; 5xx → UNAVAILABLE; 409/422 → the named codes; any
  other status, or a body that is not the contract's JSON, → BAD_RESPONSE. No httpx
  exception leaves this module; empty ids are a caller bug (ValueError).
- Logs: a retry at info, a transient give-up at warning, the circuit opening at warning, with
  the operation and error code; the token is only ever in the Authorization header.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from app.integrations.passport import answers, metrics
from app.integrations.passport.answers import Interpret
from app.integrations.passport.breaker import BreakerState, CircuitBreaker
from app.integrations.passport.errors import PassportError, PassportErrorCode
from app.integrations.passport.models import PassportAccount, PassportFamily, PassportMember
from app.settings import Settings

__all__ = [  # the data classes too, for callers that import everything from here
    "PassportAccount",
    "PassportClient",
    "PassportFamily",
    "PassportMember",
    "passport_client",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_BACKOFF_SECONDS = 5.0
# Failures that prove the request never reached the server: safe to repeat any request.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class _Call:
    operation: str
    method: str
    path: str
    idempotent: bool = True
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class PassportClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float,
        retries: int,
        retry_base_seconds: float,
        breaker: CircuitBreaker,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retries = retries
        self.retry_base_seconds = retry_base_seconds
        self.breaker = breaker
        self._token = token
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        breaker.on_change = _breaker_changed
        metrics.breaker_changed(breaker.state)

    @classmethod
    def from_settings(cls, settings: Settings) -> PassportClient:
        if not settings.passport_url:
            raise ValueError("PASSPORT_URL is not set")
        return cls(
            settings.passport_url,
            settings.passport_token,
            timeout=settings.passport_timeout_seconds,
            retries=settings.passport_retries,
            retry_base_seconds=settings.passport_retry_base_seconds,
            breaker=CircuitBreaker(
                settings.passport_breaker_failures, settings.passport_breaker_reset_seconds
            ),
        )

    def __repr__(self) -> str:  # never the token
        return f"PassportClient({self.base_url!r})"

    # Lifecycle

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def __aenter__(self) -> PassportClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # The API

    async def find_account(self, phone: str) -> PassportAccount | None:
        """The portal account of an E.164 phone number; None when it has none."""
        call = _Call("find_account", "GET", "/v1/accounts", params={"phone": phone})
        return await self._run(call, answers.or_none(200, answers.account, {"account_not_found"}))

    async def family_of(self, uid: str) -> PassportFamily | None:
        """The family the uid is admin or member of; None when in none (or no such uid)."""
        call = _Call("family_of", "GET", f"/v1/accounts/{answers.segment(uid)}/family")
        codes = {"family_not_found", "account_not_found"}
        return await self._run(call, answers.or_none(200, answers.family, codes))

    async def get_family(self, family_id: str) -> PassportFamily | None:
        call = _Call("get_family", "GET", answers.family_path(family_id))
        return await self._run(call, answers.or_none(200, answers.family, {"family_not_found"}))

    async def create_family(self, admin_uid: str, *, idempotency_key: str) -> PassportFamily:
        """A new family with admin_uid as its admin. The same key returns the same family
        (retries are safe); ALREADY_IN_FAMILY (with family_id) if the uid is in one."""
        if not idempotency_key:
            raise ValueError("an idempotency key is required")
        call = _Call(
            "create_family",
            "POST",
            "/v1/families",
            json={"admin_uid": admin_uid},
            headers={"Idempotency-Key": idempotency_key},
        )
        return await self._run(call, answers.expect(201, answers.family))

    async def delete_family(self, family_id: str) -> None:
        """Deletes the family; a family that does not exist (any more) is done too."""
        call = _Call("delete_family", "DELETE", answers.family_path(family_id))
        await self._run(call, answers.or_none(204, answers.nothing, {"family_not_found"}))

    async def add_member(self, family_id: str, uid: str) -> PassportFamily:
        """Adds uid (an existing member is fine); NOT_FOUND, ALREADY_IN_FAMILY, FAMILY_FULL."""
        call = _Call("add_member", "PUT", answers.member_path(family_id, uid))
        return await self._run(call, answers.expect(200, answers.family))

    async def remove_member(self, family_id: str, uid: str) -> None:
        """The admin removes uid (not a member: done too); CANNOT_REMOVE_ADMIN, NOT_FOUND."""
        call = _Call("remove_member", "DELETE", answers.member_path(family_id, uid))
        await self._run(call, answers.expect(204, answers.nothing))

    async def leave_family(self, family_id: str, uid: str) -> None:
        """The member uid leaves; not retried once sent (see the module docstring)."""
        path = f"{answers.member_path(family_id, uid)}/leave"
        call = _Call("leave_family", "POST", path, idempotent=False)
        await self._run(call, answers.expect(204, answers.nothing))

    # One logical call: metrics ▸ breaker ▸ retries ▸ tries

    async def _run(self, call: _Call, interpret: Interpret[T]) -> T:
        started = time.perf_counter()
        try:
            result = await self._guarded(call, interpret)
        except PassportError as exc:
            metrics.observe(call.operation, exc.code, time.perf_counter() - started)
            raise
        metrics.observe(call.operation, None, time.perf_counter() - started)
        return result

    async def _guarded(self, call: _Call, interpret: Interpret[T]) -> T:
        permit = self.breaker.acquire()
        if permit is None:
            metrics.failed_try(call.operation, PassportErrorCode.CIRCUIT_OPEN)
            raise PassportError(PassportErrorCode.CIRCUIT_OPEN, "the passport circuit is open")
        try:
            result = await self._with_retries(call, interpret)
        except PassportError as exc:
            self.breaker.record(permit, ok=not exc.transient)
            if exc.transient:
                log.warning(
                    "passport_gave_up", operation=call.operation, code=exc.code, status=exc.status
                )
            raise
        except BaseException:
            self.breaker.release(permit)
            raise
        self.breaker.record(permit, ok=True)
        return result

    async def _with_retries(self, call: _Call, interpret: Interpret[T]) -> T:
        base = self.retry_base_seconds
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=base, max=MAX_BACKOFF_SECONDS) + wait_random(0, base),
            retry=retry_if_exception(partial(_retryable, call.idempotent)),
            before_sleep=partial(_log_retry, call.operation),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._try(call, interpret)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _try(self, call: _Call, interpret: Interpret[T]) -> T:
        try:
            return interpret(await self._send(call))
        except PassportError as exc:
            metrics.failed_try(call.operation, exc.code)
            raise

    async def _send(self, call: _Call) -> httpx.Response:
        try:
            return await self._client().request(
                call.method, call.path, params=call.params, json=call.json, headers=call.headers
            )
        except httpx.TimeoutException as exc:
            message = f"no answer within {self.timeout} s ({type(exc).__name__})"
            raise PassportError(PassportErrorCode.TIMEOUT, message) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise PassportError(PassportErrorCode.UNAVAILABLE, message) from exc

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=httpx.Timeout(self.timeout),
                transport=self._transport,
            )
        return self._http


def passport_client(settings: Settings) -> PassportClient | None:
    """The client of PASSPORT_URL, or None when passport is not configured."""
    return PassportClient.from_settings(settings) if settings.passport_configured else None


# Retries and the breaker's callback


def _retryable(idempotent: bool, exc: BaseException) -> bool:
    if not isinstance(exc, PassportError) or not exc.transient:
        return False
    return idempotent or isinstance(exc.__cause__, NEVER_SENT)


def _log_retry(operation: str, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.info(
        "passport_retry",
        operation=operation,
        code=exc.code if isinstance(exc, PassportError) else None,
        attempt=state.attempt_number,
        wait_seconds=round(wait, 3),
    )


def _breaker_changed(state: BreakerState) -> None:
    metrics.breaker_changed(state)
    if state is BreakerState.OPEN:
        log.warning("passport_circuit_open")
    elif state is BreakerState.CLOSED:
        log.info("passport_circuit_closed")
