"""A refused argument never poisons the request's unit of work (both backends).

graphql-core cancels the sibling fields of a field that fails; a sibling cancelled in the
middle of a statement used to leave the request's connection unusable, so the commit raised
PendingRollbackError and the client got HTTP 500 where `BAD_USER_INPUT` was due.
"""

from __future__ import annotations

import httpx
import pytest

from app.runtime import Runtime
from tests.factories.identity import access_token, create_user
from tests.helpers import error_codes, gql

BESIDE_A_DATABASE_READ = [
    '{ viewer { goals { active { id } } purchases(after: "") { pageInfo { endCursor } } } }',
    '{ viewer { goals { active { id } } goalProgressLog(after: "") { pageInfo { endCursor } } } }',
    '{ viewer { goals { active { id } } wallet { entries(after: "x") { edges { cursor } } } } }',
    "{ viewer { wallet { balances { currency } entries(first: 101) { edges { node { id } } } } } }",
    "{ plans { slug } viewer { purchases(first: -1) { pageInfo { endCursor } } } }",
]


@pytest.mark.parametrize("document", BESIDE_A_DATABASE_READ)
async def test_a_bad_argument_beside_a_read_is_bad_user_input(
    document: str, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await access_token(runtime, await create_user(runtime))
    for _ in range(3):  # the same request again: the connection went back to the pool clean
        body = await gql(client, document, token=token)  # gql asserts HTTP 200
        assert error_codes(body) == ["BAD_USER_INPUT"], body


async def test_the_next_request_reads_normally(client: httpx.AsyncClient, runtime: Runtime) -> None:
    token = await access_token(runtime, await create_user(runtime))
    await gql(client, BESIDE_A_DATABASE_READ[0], token=token)
    body = await gql(
        client, "{ viewer { goals { active { id } } purchases { edges { cursor } } } }", token=token
    )
    assert body == {"data": {"viewer": {"goals": {"active": None}, "purchases": {"edges": []}}}}
