"""Notifier test data: the catalog, clients, events, and the jobs' steps (plain async
factories through the domain's own services)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.integrations.mail import MailBackend
from app.models.notifier import ContractType, CorpClient, CorpEvent, EmailStatus, QueuedEmail
from app.runtime import Runtime
from app.services.notifier import catalog, clients, publishing
from app.services.notifier.dispatch import DispatchConfig
from app.services.notifier.handling import Handled, handle_event
from app.uow import unit_of_work
from jobs.notifier import DispatchTotals, dispatch_all

CONFIG = DispatchConfig(
    batch_size=50,
    max_attempts=3,
    retry_base=timedelta(seconds=60),
    retry_max=timedelta(seconds=3600),
    lease=timedelta(seconds=300),
    sender="engage <noreply@engage.test>",
    cabinet_url="https://corp.example.com",
)


async def load_catalog(runtime: Runtime) -> catalog.LoadReport:
    async with runtime.session_factory() as session, session.begin():
        return await catalog.load_catalog(session)


async def create_client(
    runtime: Runtime, client_id: str | None = None, **fields: Any
) -> CorpClient:
    data: dict[str, Any] = {
        "client_id": client_id or f"corp-{uuid.uuid4().hex[:10]}",
        "name": "Acme Logistics",
        "emails": ["finance@acme.example.com"],
        "contract_type": ContractType.PREPAID,
        "currency": "RUB",
        "low_balance_threshold_minor": 500_000,
        "locale": "ru",
        "timezone": "Europe/Moscow",
        "balance_minor": 1_000_000,
    } | fields
    async with runtime.session_factory() as session, session.begin():
        return await clients.upsert_client(session, clients.ClientInput(**data), actor="test")


async def publish(
    runtime: Runtime,
    client: CorpClient,
    type_name: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    occurred_at: datetime | None = None,
) -> publishing.Published:
    async with runtime.session_factory() as session, session.begin():
        return await publishing.publish(
            session,
            type_name=type_name,
            client_id=client.external_id,
            payload=payload,
            idempotency_key=key or uuid.uuid4().hex,
            occurred_at=occurred_at,
            publisher="test",
        )


async def handle(runtime: Runtime, event_id: uuid.UUID) -> Handled | None:
    """What the `notifier.handle_event` actor does."""
    async with runtime.session_factory() as session, session.begin():
        return await handle_event(session, event_id)


async def publish_and_handle(
    runtime: Runtime, client: CorpClient, type_name: str, payload: dict[str, Any], **kw: Any
) -> Handled | None:
    published = await publish(runtime, client, type_name, payload, **kw)
    return await handle(runtime, published.event_id)


def units(runtime: Runtime) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
    return lambda: unit_of_work(runtime.session_factory)


async def dispatch(
    runtime: Runtime, backend: MailBackend, config: DispatchConfig = CONFIG
) -> DispatchTotals:
    """What `notifier.dispatch_due` does, with this backend."""
    return await dispatch_all(units(runtime), backend, config)


async def emails(runtime: Runtime, client: CorpClient | None = None) -> list[QueuedEmail]:
    async with runtime.session_factory() as session:
        statement = select(QueuedEmail).order_by(QueuedEmail.send_at, QueuedEmail.notice)
        if client is not None:
            statement = statement.where(QueuedEmail.client_id == client.id)
        return list(await session.scalars(statement))


async def events_of(runtime: Runtime, client: CorpClient) -> list[CorpEvent]:
    async with runtime.session_factory() as session:
        return list(
            await session.scalars(select(CorpEvent).where(CorpEvent.client_id == client.id))
        )


async def client_row(runtime: Runtime, client: CorpClient) -> CorpClient:
    async with runtime.session_factory() as session:
        found = await session.get(CorpClient, client.id)
    assert found is not None
    return found


async def make_due(runtime: Runtime, *, at: datetime) -> None:
    """Move every scheduled email's due time to `at` (tests of what happens later)."""
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            update(QueuedEmail).where(QueuedEmail.status == EmailStatus.SCHEDULED).values(due_at=at)
        )
