"""The per-request GraphQL context: who is calling, the unit of work, per-request loaders."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from app.auth import ANONYMOUS, Principal, TokenError
from app.runtime import Runtime
from app.services.identity.principals import resolve_principal
from app.settings import Settings
from app.uow import UnitOfWork
from schema.loaders import Loaders

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass
class Context:
    request: HTTPConnection
    runtime: Runtime
    request_id: str
    _work: UnitOfWork | None = None
    _principal: Principal | None = None
    _resolving: asyncio.Lock | None = None
    auth_error: str | None = None
    _loaders: Loaders | None = None
    operation_name: str | None = None
    failed: bool = False  # an unexpected exception happened: the unit of work is rolled back
    # A WebSocket connection's `connection_init` payload (strawberry sets it); None over HTTP.
    connection_params: dict[str, Any] | None = None
    # Set on a WebSocket connection once its principal is known: streams hold no session.
    streaming: bool = False

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def client_ip(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    @property
    def loaders(self) -> Loaders:
        """The request's DataLoaders: `context.loaders[SomeLoader]` (see `schema.loaders`)."""
        if self._loaders is None:
            self._loaders = Loaders(self)
        return self._loaders

    @property
    def session(self) -> AsyncSession:
        """The request's unit of work, opened on first use and ended by the transport."""
        if self._work is None:
            if self.streaming:
                raise RuntimeError(
                    "a subscription holds no session: open one with "
                    "runtime.session_factory() just for the lookup"
                )
            runtime = self.runtime
            self._work = UnitOfWork(runtime.session_factory, runtime.relay, runtime.pubsub)
        return self._work.session

    @property
    def authorization(self) -> str | None:
        """The caller's credential: `authorization` in the WebSocket's `connection_init`
        payload, else the `Authorization` header."""
        for key, value in (self.connection_params or {}).items():
            if key.lower() == "authorization":
                return value if value is None or isinstance(value, str) else repr(value)
        return self.request.headers.get("authorization")

    @property
    def resolved_principal(self) -> Principal:
        """The principal `principal()` resolved; anonymous before it was asked for."""
        return self._principal or ANONYMOUS

    async def principal(self) -> Principal:
        """Who is calling, resolved once per request: sibling fields asking at once wait
        for the one lookup."""
        if self._principal is None:
            if self._resolving is None:
                self._resolving = asyncio.Lock()
            async with self._resolving:
                if self._principal is None:
                    self._principal = await self._resolve_principal()
        return self._principal

    async def _resolve_principal(self) -> Principal:
        try:
            return await resolve_principal(self.session, self.authorization, self.runtime.codec)
        except TokenError as exc:
            self.auth_error = exc.reason
            return ANONYMOUS

    async def finish(self, *, commit: bool) -> None:
        """End the request's unit of work (see `app.uow`): commit, relay its jobs, publish its
        events, run its hooks; or roll back and forget them."""
        work, self._work = self._work, None
        if work is not None:
            await work.finish(commit=commit)
