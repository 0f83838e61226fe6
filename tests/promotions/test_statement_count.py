"""Round trips of the promotion paths, pinned (PostgreSQL): the launch badge (the app-start
read) and `promotionRewardAccept`, first call and retry."""

from __future__ import annotations

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import promotions as f
from tests.factories.identity import access_token, create_user
from tests.goals.test_statement_count import counting_statements
from tests.orders.test_statement_count import request_transaction
from tests.promotions.test_client import ACCEPT, LAUNCH, gid

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

# SAVEPOINT, the principal, the user's offers (one statement: pre-offers, promotion, run,
# split, geo flags, the newcomer check), RELEASE SAVEPOINT.
BADGE_STATEMENTS = 4
# SAVEPOINT, the principal, the user's lock, the guarded REWARDED update, the split upsert
# (steps 1 and 5), the active pre-offer, the application, the origination session, RELEASE.
ACCEPT_STATEMENTS = 9
# SAVEPOINT, the principal, the user's lock, the guard (passes no row), the run's state,
# its application, RELEASE SAVEPOINT.
RETRY_STATEMENTS = 7


async def _post(client: httpx.AsyncClient, document: str, variables: dict, token: str) -> dict:
    response = await client.post(
        "/graphql",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict = response.json()
    assert "errors" not in body, body
    return body


async def test_the_badge_is_one_statement(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user = await create_user(runtime)
    await f.started(runtime, user.id)
    token = await access_token(runtime, user)
    await _post(client, LAUNCH, {}, token)  # the principal's cache is warm, as in production
    with counting_statements(runtime.engine) as statements:
        body = await _post(client, LAUNCH, {}, token)
    assert body["data"]["launch"] == {"promotionBadge": "IN_PROGRESS"}
    assert len(request_transaction(statements)) == BADGE_STATEMENTS, statements


async def test_accepting_costs_one_statement_per_step(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    promotion = await f.completed(runtime, user.id)
    token = await access_token(runtime, user)
    with counting_statements(runtime.engine) as statements:
        first = await _post(client, ACCEPT, {"id": gid(promotion)}, token)
    assert first["data"]["promotionRewardAccept"]["errors"] == []
    assert len(request_transaction(statements)) == ACCEPT_STATEMENTS, statements
    with counting_statements(runtime.engine) as statements:
        again = await _post(client, ACCEPT, {"id": gid(promotion)}, token)
    assert again == first
    assert len(request_transaction(statements)) == RETRY_STATEMENTS, statements
