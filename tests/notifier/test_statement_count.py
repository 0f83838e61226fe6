"""Round trips of the notifier's volume paths, pinned (PostgreSQL): `corpEventPublish`, an
event's handling, and a dispatch batch (statements per batch, not per email)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.integrations.mail import SmtpBackend
from app.runtime import Runtime
from tests.factories.identity import service_token
from tests.factories.notifier import (
    CONFIG,
    create_client,
    dispatch,
    handle,
    load_catalog,
    publish,
    publish_and_handle,
)
from tests.goals.test_statement_count import counting_statements
from tests.helpers import gql
from tests.notifier.test_publish import PUBLISH
from tests.orders.test_statement_count import request_transaction
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

# SAVEPOINT, the service token, the event INSERT … SELECT (finds the client), the client's
# balance UPDATE, the outbox INSERT, RELEASE SAVEPOINT.
PUBLISH_STATEMENTS = 6
# BEGIN, the event's claim, the client, the client's pending emails, the triggered rules, the
# new rows (one pipelined round trip), COMMIT. (Rule versions are cached after first use.)
HANDLE_STATEMENTS = 7
# Per batch, whatever its size: the claim, clients, events, notices, preferences, templates
# (BEGIN/COMMIT around them), then the SENT marks, the attempts (pipelined), the slots given
# back (none) and BEGIN/COMMIT.
DISPATCH_STATEMENTS_PER_BATCH = 14


async def test_publishing_is_four_statements_in_the_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    corp = await create_client(runtime)
    token = await service_token(runtime)
    data = {
        "type": "BALANCE_CHANGED",
        "clientId": corp.external_id,
        "payload": {"balanceMinor": 700_000, "currency": "RUB"},
        "idempotencyKey": uuid.uuid4().hex,
    }
    await gql(client, PUBLISH, {"input": data | {"idempotencyKey": "warm"}}, token=token)
    with counting_statements(runtime.engine) as statements:
        body = await gql(client, PUBLISH, {"input": data}, token=token)
    assert body["data"]["corpEventPublish"]["errors"] == []
    assert len(request_transaction(statements)) == PUBLISH_STATEMENTS, statements


async def test_handling_an_event_is_a_fixed_number_of_statements(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "CLIENT_CREATED_BY_OFFER", {"contractType": "PREPAID"})
    published = await publish(runtime, corp, "CLIENT_CREATED_BY_OFFER", {"contractType": "PREPAID"})
    with counting_statements(runtime.engine) as statements:
        handled = await handle(runtime, published.event_id)
    assert handled is not None and handled.scheduled == 3
    assert len(statements) == HANDLE_STATEMENTS, statements


async def test_a_dispatch_batch_costs_the_same_for_one_email_or_twenty(
    runtime: Runtime,
) -> None:
    await load_catalog(runtime)
    counts = []
    with SmtpServer() as smtp:
        backend = SmtpBackend.from_url(smtp.url, timeout=5, validate_certs=False)
        for emails in (1, 20):
            for _ in range(emails):
                corp = await create_client(runtime)
                await publish_and_handle(
                    runtime, corp, "CONTRACT_ACTIVATED",
                    {"contractType": "PREPAID", "service": "CARGO"},
                )  # fmt: skip
            with counting_statements(runtime.engine) as statements:
                totals = await dispatch(runtime, backend, CONFIG)
            assert totals.sent == emails
            counts.append(len(statements))
    assert counts[0] == counts[1], counts
