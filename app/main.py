"""The ASGI application: /graphql (HTTP and WebSocket), /healthz, /readyz, /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from app import interpreter, outbox
from app.graphql_http import GraphQLEndpoint
from app.graphql_ws import GraphQLWebSocket
from app.logging import configure_logging
from app.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from app.middleware import ForwardedClientMiddleware, RequestContextMiddleware
from app.models.base import utcnow
from app.runtime import Runtime
from app.settings import Settings, get_settings
from schema.schema import build_schema

log = structlog.get_logger("engage.app")


async def _observe_outbox(runtime: Runtime) -> None:
    """Refresh the outbox gauges at scrape time (a partial index keeps this cheap)."""
    try:
        async with runtime.session_factory() as session:
            count, oldest = await outbox.backlog(session)
    except Exception:  # a scrape must not fail because the database did
        log.warning("metrics.outbox_backlog_failed", exc_info=True)
        return
    OUTBOX_BACKLOG.set(count)
    OUTBOX_OLDEST_AGE.set((utcnow() - oldest).total_seconds() if oldest is not None else 0)


def serve_app() -> Starlette:
    """The app `engage serve` runs: `create_app` with the server's interpreter settings."""
    return create_app(tune_interpreter=True)


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    *,
    tune_interpreter: bool = False,
) -> Starlette:
    settings = settings or get_settings()
    if tune_interpreter:
        interpreter.tune(settings)
    configure_logging(settings.log_level, settings.log_json)
    runtime = runtime or Runtime.build(settings)
    schema = build_schema(settings)
    endpoint = GraphQLEndpoint(schema, runtime)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"error: {type(exc).__name__}"
        if runtime.redis is not None:
            try:
                await runtime.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:  # noqa: BLE001
                checks["redis"] = f"error: {type(exc).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(_: Request) -> Response:
        await _observe_outbox(runtime)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info(
            "app.start",
            env=settings.env,
            database=runtime.engine.url.get_backend_name(),
            redis=bool(settings.redis_url),
        )
        await runtime.start()
        if tune_interpreter:
            interpreter.freeze_startup_heap(settings)
        try:
            yield
        finally:
            await runtime.close()

    app = Starlette(
        routes=[
            Route("/graphql", endpoint, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            WebSocketRoute("/graphql", GraphQLWebSocket(schema, runtime)),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        middleware=[
            Middleware(ForwardedClientMiddleware, trusted_proxies=settings.trusted_proxies),
            Middleware(RequestContextMiddleware),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
