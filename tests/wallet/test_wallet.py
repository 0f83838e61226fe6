"""The wallet on both backends: the ledger writes a source once, `viewer.wallet` sums per
currency and pages entries newest first, and only the signed-in user reads their own."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import httpx

from app.models.base import utcnow
from app.models.wallet import WalletEntryKind
from app.runtime import Runtime
from app.services.wallet import ledger
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.wallet import credit, entries_of
from tests.helpers import error_codes, gql

WALLET = """
query Wallet($first: Int, $after: String) {
  viewer {
    wallet {
      balances { amountMinor currency }
      entries(first: $first, after: $after) {
        edges { node { id amount { amountMinor currency } kind orderId } }
        pageInfo { hasNextPage hasPreviousPage endCursor }
      }
    }
  }
}
"""


async def test_the_ledger_writes_a_source_once(runtime: Runtime) -> None:
    user = await create_user(runtime)
    entry = ledger.Entry(
        user_id=user.id,
        amount_minor=500,
        currency="RUB",
        kind=WalletEntryKind.GOAL_BONUS,
        source_key=f"test:{user.id}",
    )
    for _ in range(2):  # a retried step
        async with runtime.session_factory() as session, session.begin():
            await ledger.credit(session, entry, now=utcnow())
    async with runtime.session_factory() as session, session.begin():
        await ledger.record_entries(
            session, [entry, replace(entry, source_key=f"other:{user.id}")], now=utcnow()
        )

    entries = await entries_of(runtime, user.id)
    assert sorted(e.source_key for e in entries) == sorted([entry.source_key, f"other:{user.id}"])


async def test_balances_sum_per_currency_and_entries_page_newest_first(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    token = await access_token(runtime, user)
    start = utcnow() - timedelta(hours=1)
    amounts = [(30_000, "RUB"), (1_500, "EUR"), (20_000, "RUB"), (-5_000, "RUB")]
    for minute, (amount, currency) in enumerate(amounts):
        await credit(runtime, user.id, amount, currency, at=start + timedelta(minutes=minute))

    first = await gql(client, WALLET, {"first": 3}, token=token)
    wallet = first["data"]["viewer"]["wallet"]
    assert wallet["balances"] == [
        {"amountMinor": 1_500, "currency": "EUR"},
        {"amountMinor": 45_000, "currency": "RUB"},
    ]
    page = wallet["entries"]
    assert [e["node"]["amount"]["amountMinor"] for e in page["edges"]] == [-5_000, 20_000, 1_500]
    assert page["pageInfo"]["hasNextPage"] is True

    rest = await gql(
        client, WALLET, {"first": 3, "after": page["pageInfo"]["endCursor"]}, token=token
    )
    tail = rest["data"]["viewer"]["wallet"]["entries"]
    assert [e["node"]["amount"]["amountMinor"] for e in tail["edges"]] == [30_000]
    assert tail["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": tail["pageInfo"]["endCursor"],
    }


async def test_a_wallet_is_its_owners_only(client: httpx.AsyncClient, runtime: Runtime) -> None:
    owner = await create_user(runtime)
    await credit(runtime, owner.id, 700)
    stranger = await gql(
        client, WALLET, token=await access_token(runtime, await create_user(runtime))
    )
    assert stranger["data"]["viewer"]["wallet"]["balances"] == []
    assert stranger["data"]["viewer"]["wallet"]["entries"]["edges"] == []

    as_service = await gql(client, WALLET, token=await service_token(runtime))
    assert as_service["data"] is None and error_codes(as_service) == ["FORBIDDEN"]
    anonymous = await gql(client, WALLET)
    assert anonymous["data"] is None and error_codes(anonymous) == ["UNAUTHENTICATED"]


async def test_a_bad_cursor_or_page_size_is_bad_user_input(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    token = await access_token(runtime, user)
    for variables in ({"after": "x"}, {"after": ""}, {"first": 101}, {"first": -1}):
        body = await gql(client, WALLET, variables, token=token)
        assert error_codes(body) == ["BAD_USER_INPUT"], (variables, body)
