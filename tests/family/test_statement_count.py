"""Round trips of the ride calls, pinned (PostgreSQL): the hot path of the order system."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.models.family import LimitFrame
from app.runtime import Runtime
from tests.factories import family as f
from tests.factories.identity import service_token
from tests.family.test_client import gid
from tests.family.test_rides import CHARGE, CHECK, rub
from tests.goals.test_statement_count import counting_statements
from tests.orders.test_statement_count import request_transaction

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

# SAVEPOINT, the service token, the member's row with its limit and the owner's timezone
# (locked), one CTE that sums the usage and inserts the hold if it fits, RELEASE SAVEPOINT.
HOLD_STATEMENTS = 5
# SAVEPOINT, the token, the member's row, the usage sums, RELEASE SAVEPOINT.
CHECK_STATEMENTS = 5
# SAVEPOINT, the token, the member's row, the charge INSERT, the hold's UPDATE, the frame's
# charged sum (for the owner's 80 / 100 % alerts), RELEASE SAVEPOINT.
CHARGE_STATEMENTS = 7


async def _count(
    client: httpx.AsyncClient, runtime: Runtime, doc: str, variables: dict[str, Any], token: str
) -> list[str]:
    with counting_statements(runtime.engine) as statements:
        response = await client.post(
            "/graphql",
            json={"query": doc, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert "errors" not in body, body
    root = next(iter(body["data"].values()))
    assert root["errors"] == [], root
    return request_transaction(statements)


async def test_ride_calls_keep_to_few_statements(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(100_000, LimitFrame.MONTH))
    token = await service_token(runtime)
    who = {"a": gid(family), "u": str(kid.id), "amount": rub(500)}
    await _count(
        client, runtime, CHECK, who, token
    )  # warm: the token's lookup, prepared statements
    held = await _count(client, runtime, CHECK, who | {"hold": {"orderId": "o-1"}}, token)
    assert len(held) == HOLD_STATEMENTS, held
    plain = await _count(client, runtime, CHECK, who, token)
    assert len(plain) == CHECK_STATEMENTS, plain
    charge = {"a": gid(family), "u": str(kid.id), "order": "o-1", "amount": rub(500)}
    charged = await _count(client, runtime, CHARGE, charge, token)
    assert len(charged) == CHARGE_STATEMENTS, charged
