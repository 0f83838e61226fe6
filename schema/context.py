"""The per-request GraphQL context: who is calling, the unit of work, per-request loaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from app import events, outbox
from app.auth import ANONYMOUS, Principal, TokenError
from app.runtime import Runtime
from app.services.identity.principals import resolve_principal
from app.settings import Settings

AfterCommit = Callable[[], Awaitable[None]]


@dataclass
class Context:
    request: HTTPConnection
    runtime: Runtime
    request_id: str
    _session: AsyncSession | None = None
    _principal: Principal | None = None
    auth_error: str | None = None
    after_commit: list[AfterCommit] = field(default_factory=list)
    loaders: dict[str, Any] = field(default_factory=dict)
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
    def session(self) -> AsyncSession:
        """The request's unit of work, opened on first use and committed by the HTTP layer."""
        if self._session is None:
            if self.streaming:
                raise RuntimeError(
                    "a subscription holds no session: open one with "
                    "runtime.session_factory() just for the lookup"
                )
            self._session = self.runtime.session_factory()
        return self._session

    @property
    def authorization(self) -> str | None:
        """The caller's credential: `authorization` in the WebSocket's `connection_init`
        payload, else the `Authorization` header."""
        for key, value in (self.connection_params or {}).items():
            if key.lower() == "authorization":
                return value if value is None or isinstance(value, str) else repr(value)
        return self.request.headers.get("authorization")

    async def principal(self) -> Principal:
        if self._principal is None:
            try:
                self._principal = await resolve_principal(
                    self.session,
                    self.authorization,
                    self.runtime.codec,
                )
            except TokenError as exc:
                self.auth_error = exc.reason
                self._principal = ANONYMOUS
        return self._principal

    async def finish(self, *, commit: bool) -> None:
        """End the unit of work; after a commit, relay its jobs, publish its events and run
        the after-commit hooks."""
        if self._session is None:
            return
        session, self._session = self._session, None
        try:
            if commit:
                await session.commit()
            else:
                outbox.discard_pending(session)
                events.discard_pending_events(session)
                await session.rollback()
        finally:
            await session.close()
        if commit:
            await self.runtime.relay.relay_committed(session)
            await events.publish_committed(self.runtime.pubsub, session)
            for hook in self.after_commit:
                await hook()
