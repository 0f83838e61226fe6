"""A passport double: the v1 family API in memory over real HTTP, with fault injection.

`serve()` runs it for local development (`engage passport-double`); the tests run
`create_double_app` on loopback (tests/passport_server.py). The contract and the choices the
API description leaves open are in `double_state.py`.

Routes (API calls need `Authorization: Bearer <token>`, else 401 `unauthorized`):

    GET    /v1/accounts?phone=<E.164>                     find_account
    GET    /v1/accounts/{uid}/family                      family_of
    GET    /v1/families/{family_id}                       get_family
    POST   /v1/families  {"admin_uid"} + Idempotency-Key  create_family
    DELETE /v1/families/{family_id}                       delete_family
    PUT    /v1/families/{family_id}/members/{uid}         add_member
    DELETE /v1/families/{family_id}/members/{uid}         remove_member
    POST   /v1/families/{family_id}/members/{uid}/leave   leave_family

Control (no authorization): `POST /_double/accounts {"phone"}` → 201 account;
`POST /_double/faults {...}` → 200 the faults now in force; `POST /_double/reset
{"data"?: bool, "calls"?: bool}` → 204; `GET /_double/calls[?operation=]` → the call log
(`status` is null while a call is unanswered); `GET /_double/state` → accounts and families;
`GET /healthz` → 200. An injected failure answers `{"error": "injected_fault"}`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.integrations.passport.double_state import (
    HANG_SECONDS,
    Answer,
    DoubleState,
    FaultKind,
    Faults,
    Plan,
    error,
)

Work = Callable[[Request], Awaitable[Answer]]
Endpoint = Callable[[Request], Awaitable[Response]]
HANG_POLL_SECONDS = 0.05


def create_double_app(state: DoubleState, token: str) -> Starlette:
    api = _Api(state, token)
    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/v1/accounts", api.route("find_account", api.find_account), methods=["GET"]),
        Route("/v1/accounts/{uid}/family", api.route("family_of", api.family_of), methods=["GET"]),
        Route("/v1/families", api.route("create_family", api.create_family), methods=["POST"]),
        Route(
            "/v1/families/{family_id}",
            api.route("get_family", api.get_family),
            methods=["GET"],
        ),
        Route(
            "/v1/families/{family_id}",
            api.route("delete_family", api.delete_family),
            methods=["DELETE"],
        ),
        Route(
            "/v1/families/{family_id}/members/{uid}",
            api.route("add_member", api.add_member),
            methods=["PUT"],
        ),
        Route(
            "/v1/families/{family_id}/members/{uid}",
            api.route("remove_member", api.remove_member),
            methods=["DELETE"],
        ),
        Route(
            "/v1/families/{family_id}/members/{uid}/leave",
            api.route("leave_family", api.leave_family),
            methods=["POST"],
        ),
        *_control_routes(state),
    ]
    return Starlette(routes=routes)


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    token: str = "passport-dev-token",
    auto_accounts: bool = True,
    without: Sequence[str] = (),
) -> None:
    """Runs the double until interrupted (blocking)."""
    state = DoubleState(auto_accounts=auto_accounts, without=without)
    uvicorn.run(
        create_double_app(state, token),
        host=host,
        port=port,
        lifespan="off",
        log_level="info",
        timeout_graceful_shutdown=1,  # hanging calls (timeout_next) do not hold the exit
    )


class _Api:
    def __init__(self, state: DoubleState, token: str) -> None:
        self.state = state
        self._authorization = f"Bearer {token}".encode()

    def route(self, operation: str, work: Work) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            entry = self.state.record_call(operation, request.method, request.url.path)
            answer = await self._answer(request, operation, work)
            self.state.answered(entry, answer.status)
            return _response(answer)

        return endpoint

    async def _answer(self, request: Request, operation: str, work: Work) -> Answer:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self._authorization):
            return error(401, "unauthorized")
        plan = self.state.plan(operation)
        if plan.latency_seconds:
            await asyncio.sleep(plan.latency_seconds)
        if plan.fault is not None and not plan.after_work:
            return await self._fault(plan)
        answer = await work(request)
        if plan.fault is not None:
            return await self._fault(plan)
        return answer

    async def _fault(self, plan: Plan) -> Answer:
        if plan.fault is FaultKind.HANG:
            waited = 0.0
            while waited < HANG_SECONDS and not self.state.closing:
                await asyncio.sleep(HANG_POLL_SECONDS)
                waited += HANG_POLL_SECONDS
        return error(plan.status, "injected_fault")

    # The operations

    async def find_account(self, request: Request) -> Answer:
        return self.state.find_account(request.query_params.get("phone", ""))

    async def family_of(self, request: Request) -> Answer:
        return self.state.family_of(request.path_params["uid"])

    async def get_family(self, request: Request) -> Answer:
        return self.state.get_family(request.path_params["family_id"])

    async def create_family(self, request: Request) -> Answer:
        key = request.headers.get("idempotency-key", "")
        if not key:
            return error(400, "idempotency_key_required")
        body = await _json_body(request)
        admin_uid = body.get("admin_uid") if body is not None else None
        if not isinstance(admin_uid, str) or not admin_uid:
            return error(400, "invalid_request")
        return self.state.create_family(admin_uid, key)

    async def delete_family(self, request: Request) -> Answer:
        return self.state.delete_family(request.path_params["family_id"])

    async def add_member(self, request: Request) -> Answer:
        params = request.path_params
        return self.state.add_member(params["family_id"], params["uid"])

    async def remove_member(self, request: Request) -> Answer:
        params = request.path_params
        return self.state.remove_member(params["family_id"], params["uid"])

    async def leave_family(self, request: Request) -> Answer:
        params = request.path_params
        return self.state.leave_family(params["family_id"], params["uid"])


def _control_routes(state: DoubleState) -> list[Route]:
    async def accounts(request: Request) -> Response:
        body = await _json_body(request)
        phone = body.get("phone") if body is not None else None
        try:
            account = state.register(phone if isinstance(phone, str) else "")
        except ValueError:
            return _response(error(400, "invalid_phone"))
        return JSONResponse(account, status_code=201)

    async def faults(request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            return _response(error(400, "invalid_request"))
        try:
            current = state.set_faults(**body)
        except ValueError as exc:
            return _response(error(400, "invalid_faults", message=str(exc)))
        return JSONResponse(faults_json(current))

    async def reset(request: Request) -> Response:
        body = await _json_body(request, empty={})
        if body is None:
            return _response(error(400, "invalid_request"))
        state.reset(data=body.get("data") is True, calls=body.get("calls") is True)
        return Response(status_code=204)

    async def calls(request: Request) -> Response:
        return JSONResponse(state.calls(request.query_params.get("operation")))

    async def snapshot(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    return [
        Route("/_double/accounts", accounts, methods=["POST"]),
        Route("/_double/faults", faults, methods=["POST"]),
        Route("/_double/reset", reset, methods=["POST"]),
        Route("/_double/calls", calls, methods=["GET"]),
        Route("/_double/state", snapshot, methods=["GET"]),
    ]


def faults_json(faults: Faults) -> dict[str, Any]:
    values = asdict(faults)
    values["operations"] = None if faults.operations is None else sorted(faults.operations)
    return values


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _json_body(
    request: Request, *, empty: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The request's JSON object; `empty` for an empty body; None when it is not an object."""
    raw = await request.body()
    if not raw.strip():
        return empty
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _response(answer: Answer) -> Response:
    if answer.body is None:
        return Response(status_code=answer.status)
    return JSONResponse(answer.body, status_code=answer.status)
