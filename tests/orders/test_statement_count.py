"""Round trips of the ingestion hot paths, pinned (PostgreSQL, where they are lean):
`orderRecord`, `orderRecordBatch` and the `goals.process_orders` job."""

from __future__ import annotations

import httpx
import pytest

from app.runtime import Runtime
from tests.factories.goals import assign, create_template, goals_of, process_users
from tests.factories.identity import create_user, service_token
from tests.factories.orders import order, record_batch
from tests.goals.test_statement_count import counting_statements
from tests.orders.test_order_record import ORDER_RECORD, order_input
from tests.orders.test_order_record_batch import BATCH, ride

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def request_transaction(statements: list[str]) -> list[str]:
    """The request's own transaction: after it the in-process relay marks the outbox row
    sent in a transaction of its own (batched across requests in production)."""
    end = next(i for i, s in enumerate(statements) if s.startswith("RELEASE SAVEPOINT"))
    return statements[: end + 1]


# SAVEPOINT (the test's BEGIN), the service token, the order + queue CTE, the outbox INSERT
# (enqueue_unique: the user had no job scheduled), RELEASE SAVEPOINT (the COMMIT).
ORDER_RECORD_STATEMENTS = 5
# A batch of any size: SAVEPOINT, the token, the order INSERTs (pipelined: one round trip),
# the queue upserts (pipelined), the outbox INSERT, RELEASE SAVEPOINT.
BATCH_STATEMENTS = 6
# SAVEPOINT, lock the users, claim their queue rows, load the pending orders, the ledger
# rows, the progress UPDATEs, the promotions consumer's read of STARTED runs (none here:
# tests/promotions/test_rides.py counts a batch with promotions), the pending markers,
# RELEASE SAVEPOINT.
JOB_STATEMENTS = 9


async def test_order_record_costs_two_statements_of_its_own(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    token = await service_token(runtime)
    with counting_statements(runtime.engine) as statements:
        response = await client.post(
            "/graphql",
            json={"query": ORDER_RECORD, "variables": order_input(user.id)},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.json()["data"]["orderRecord"]["outcome"] == "NEW"
    assert len(request_transaction(statements)) == ORDER_RECORD_STATEMENTS, statements


@pytest.mark.parametrize("size", [2, 50, 500])
async def test_a_batch_costs_the_same_statements_whatever_its_size(
    client: httpx.AsyncClient, runtime: Runtime, size: int
) -> None:
    users = [await create_user(runtime) for _ in range(min(size, 20))]
    token = await service_token(runtime)
    orders = [ride(users[i % len(users)].id, f"c-{i}") for i in range(size)]
    with counting_statements(runtime.engine) as statements:
        response = await client.post(
            "/graphql",
            json={"query": BATCH, "variables": {"input": {"orders": orders}}},
            headers={"Authorization": f"Bearer {token}"},
        )
    results = response.json()["data"]["orderRecordBatch"]["results"]
    assert [r["outcome"] for r in results] == ["NEW"] * size
    assert len(request_transaction(statements)) == BATCH_STATEMENTS, statements


async def test_the_processing_job_costs_the_same_statements_for_1_or_60_orders(
    runtime: Runtime,
) -> None:
    for orders_per_user, users_count in ((1, 1), (12, 5)):
        template = await create_template(runtime, conditions={"target": 50, "periodDays": 5})
        users = [await create_user(runtime) for _ in range(users_count)]
        for user in users:
            await assign(runtime, user.id, template.id)
        await record_batch(runtime, [order(u.id) for u in users for _ in range(orders_per_user)])
        with counting_statements(runtime.engine) as statements:
            results = await process_users(runtime, [u.id for u in users])
        assert len(results) == orders_per_user * users_count
        assert len(statements) == JOB_STATEMENTS, statements
        for user in users:
            assert [g.progress for g in await goals_of(runtime, user.id)] == [orders_per_user]
