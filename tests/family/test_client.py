"""The family over the client API (both backends): create, members, limits, cards, reads,
and every refusal (typed, naming the field, changing nothing)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from strawberry.relay import to_base64

from app.models.family import LimitFrame
from app.runtime import Runtime
from app.services.errors import DomainError
from app.services.family.codes import FamilyRideErrorCode
from tests.factories import family as f
from tests.factories.identity import access_token, create_user
from tests.helpers import gql, row_counts

FAMILY_FIELDS = """
  id name color type passportAccount hasPlusMulti memberRole migrationState
  members {
    id phone role portalStatus limitHidden
    limit { amount { amountMinor currency } frame remaining { amountMinor } resetsAt }
  }
  membersError { code }
  paymentMethods { id last4 }
  mainPaymentMethodId
"""
VIEWER = "query { viewer { familyAccounts {" + FAMILY_FIELDS + "} } }"
CREATE = (
    "mutation($name: String!, $color: String!) { familyCreate(input: {name: $name, color: $color})"
    " { account {" + FAMILY_FIELDS + "} errors { code field message } } }"
)
ADD = (
    "mutation($a: ID!, $phone: String!, $limit: FamilyLimitInput) { familyMemberAdd(input: "
    "{accountId: $a, phone: $phone, limit: $limit}) { member { id phone role acceptedAt "
    "limit { frame } } errors { code field message } } }"
)
ACCEPT = (
    "mutation($a: ID!) { familyInvitationAccept(input: {accountId: $a}) "
    "{ account { id memberRole } errors { code field } } }"
)
DECLINE = (
    "mutation($a: ID!) { familyInvitationDecline(input: {accountId: $a}) "
    "{ accountId errors { code field } } }"
)
INVITATIONS = "query { viewer { familyInvitations { familyAccountId name ownerPhone invitedAt } } }"
REMOVE = (
    "mutation($a: ID!, $m: ID!) { familyMemberRemove(input: {accountId: $a, memberId: $m}) "
    "{ account { members { phone } } errors { code field } } }"
)
LEAVE = (
    "mutation($a: ID!) { familyLeave(input: {accountId: $a}) { accountId errors { code field } } }"
)
DELETE = (
    "mutation($a: ID!) { familyDelete(input: {accountId: $a}) { accountId errors { code field } } }"
)
LIMIT = (
    "mutation($a: ID!, $m: ID!, $limit: FamilyLimitInput) { familyMemberLimitSet(input: "
    "{accountId: $a, memberId: $m, limit: $limit}) { account { members { phone limit "
    "{ amount { amountMinor } frame } } } errors { code field } } }"
)
CARDS = (
    "mutation($a: ID!, $cards: [String!]!, $main: String) { familyPaymentMethodSet(input: "
    "{accountId: $a, cardIds: $cards, mainCardId: $main}) { account { paymentMethods { id } "
    "mainPaymentMethodId } errors { code field } } }"
)
PAYMENT_METHODS = """
query { viewer { paymentMethods {
  card { id } familyAccountId main passportAccount limit { remaining { amountMinor } frame }
} } }"""


def gid(family: f.Family) -> str:
    return to_base64("FamilyAccount", str(family.id))


def member_gid(member_id: Any) -> str:
    return to_base64("FamilyMember", str(member_id))


async def _payload(client: httpx.AsyncClient, doc: str, root: str, token: str, /, **v: Any) -> Any:
    body = await gql(client, doc, v, token=token)
    assert "errors" not in body, body
    return body["data"][root]


def _codes(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def test_create_makes_the_caller_owner(client: httpx.AsyncClient, runtime: Runtime) -> None:
    owner = await f.person(runtime)
    token = await access_token(runtime, owner)
    payload = await _payload(
        client, CREATE, "familyCreate", token, name="  Our   home ", color="#00aaff"
    )
    assert payload["errors"] == []
    account = payload["account"]
    assert (account["name"], account["color"], account["type"]) == ("Our home", "00AAFF", "FAMILY")
    assert account["memberRole"] == "OWNER" and account["passportAccount"] is False
    assert [m["role"] for m in account["members"]] == ["OWNER"]
    viewer = await gql(client, VIEWER, token=token)
    assert [a["id"] for a in viewer["data"]["viewer"]["familyAccounts"]] == [account["id"]]


@pytest.mark.parametrize(
    ("name", "color", "code", "field"),
    [
        ("", "000000", "INVALID_NAME", "name"),
        ("x" * 65, "000000", "INVALID_NAME", "name"),
        ("bad\u0000name", "000000", "INVALID_NAME", "name"),
        ("Home", "blue", "INVALID_COLOR", "color"),
        ("Home", "#12345", "INVALID_COLOR", "color"),
    ],
)
async def test_bad_create_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, name: str, color: str, code: str, field: str
) -> None:
    token = await access_token(runtime, await f.person(runtime))
    before = await row_counts(runtime)
    payload = await _payload(client, CREATE, "familyCreate", token, name=name, color=color)
    assert _codes(payload) == [(code, field)] and payload["account"] is None
    assert await row_counts(runtime) == before


async def test_one_family_per_user(client: httpx.AsyncClient, runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family)
    for user in (family.owner, kid):
        token = await access_token(runtime, user)
        payload = await _payload(
            client, CREATE, "familyCreate", token, name="Second", color="000000"
        )
        assert _codes(payload) == [("ALREADY_IN_FAMILY", None)]


async def test_owner_adds_a_member_with_a_limit(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.person(runtime)
    limit = {"amountMinor": 50_000, "currency": "RUB", "frame": "WEEK"}
    payload = await _payload(
        client,
        ADD,
        "familyMemberAdd",
        family.owner_token,
        a=gid(family),
        phone=kid.phone,
        limit=limit,
    )
    assert payload["errors"] == []
    assert payload["member"]["phone"] == kid.phone and payload["member"]["role"] == "MEMBER"
    assert payload["member"]["limit"] == {"frame": "WEEK"}
    assert payload["member"]["acceptedAt"] is None
    kid_token = await access_token(runtime, kid)
    invited = await gql(client, VIEWER, token=kid_token)
    assert invited["data"]["viewer"]["familyAccounts"] == []  # not a member until they accept
    invitations = await gql(client, INVITATIONS, token=kid_token)
    [invitation] = invitations["data"]["viewer"]["familyInvitations"]
    assert invitation["familyAccountId"] == gid(family)
    assert invitation["ownerPhone"] == family.owner.phone
    with pytest.raises(DomainError) as refused:  # an invitation pays for no ride
        await f.check(runtime, family, kid, 1)
    assert refused.value.code is FamilyRideErrorCode.NOT_A_MEMBER
    accepted = await _payload(client, ACCEPT, "familyInvitationAccept", kid_token, a=gid(family))
    assert accepted["errors"] == [] and accepted["account"]["memberRole"] == "MEMBER"
    viewer = await gql(client, VIEWER, token=kid_token)
    [account] = viewer["data"]["viewer"]["familyAccounts"]
    assert account["memberRole"] == "MEMBER"
    again = await _payload(client, ACCEPT, "familyInvitationAccept", kid_token, a=gid(family))
    assert _codes(again) == [("NOT_FOUND", "accountId")]


async def test_an_invitation_can_be_declined_or_withdrawn(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, accept=False)
    kid_token = await access_token(runtime, kid)
    declined = await _payload(client, DECLINE, "familyInvitationDecline", kid_token, a=gid(family))
    assert declined == {"accountId": gid(family), "errors": []}
    assert (await gql(client, INVITATIONS, token=kid_token))["data"]["viewer"][
        "familyInvitations"
    ] == []
    await f.add_member(runtime, family, kid, accept=False)  # the owner may invite again
    member = member_gid(await f.member_id(runtime, family, kid))
    withdrawn = await _payload(
        client, REMOVE, "familyMemberRemove", family.owner_token, a=gid(family), m=member
    )
    assert withdrawn["errors"] == []
    refused = await _payload(client, ACCEPT, "familyInvitationAccept", kid_token, a=gid(family))
    assert _codes(refused) == [("NOT_FOUND", "accountId")]


async def test_invitations_from_several_families_and_one_acceptance(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first, second = await f.create_family(runtime), await f.create_family(runtime)
    kid = await f.add_member(runtime, first, accept=False)
    await f.add_member(runtime, second, kid, accept=False)
    kid_token = await access_token(runtime, kid)
    listed = (await gql(client, INVITATIONS, token=kid_token))["data"]["viewer"]
    assert {i["familyAccountId"] for i in listed["familyInvitations"]} == {gid(first), gid(second)}
    ok = await _payload(client, ACCEPT, "familyInvitationAccept", kid_token, a=gid(first))
    assert ok["errors"] == []
    stranger = await access_token(runtime, await f.person(runtime))
    before = await row_counts(runtime)
    refused = await _payload(client, ACCEPT, "familyInvitationAccept", kid_token, a=gid(second))
    assert _codes(refused) == [("ALREADY_IN_FAMILY", "accountId")]
    assert await row_counts(runtime) == before
    for doc, root in ((ACCEPT, "familyInvitationAccept"), (DECLINE, "familyInvitationDecline")):
        nobody = await _payload(client, doc, root, stranger, a=gid(second))
        assert _codes(nobody) == [("NOT_FOUND", "accountId")]
    assert await row_counts(runtime) == before


async def test_bad_member_adds_are_refused_and_change_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family)
    other = await f.create_family(runtime)
    stranger = await f.person(runtime)
    no_phone = await create_user(runtime)
    cases: list[tuple[dict[str, Any], str, tuple[str, str | None]]] = [
        ({"phone": kid.phone}, family.owner_token, ("ALREADY_MEMBER", "phone")),
        ({"phone": family.owner.phone}, family.owner_token, ("OWNER_IS_MEMBER", "phone")),
        ({"phone": other.owner.phone}, family.owner_token, ("ALREADY_IN_FAMILY", "phone")),
        ({"phone": "+79990000000"}, family.owner_token, ("USER_NOT_FOUND", "phone")),
        ({"phone": "12345"}, family.owner_token, ("INVALID_PHONE", "phone")),
        ({"phone": stranger.phone}, await access_token(runtime, kid), ("NOT_OWNER", "accountId")),
        ({"phone": stranger.phone}, other.owner_token, ("NOT_FOUND", "accountId")),
        (
            {"phone": stranger.phone},
            await access_token(runtime, no_phone),
            ("NOT_FOUND", "accountId"),
        ),
        (
            {
                "phone": stranger.phone,
                "limit": {"amountMinor": -1, "currency": "RUB", "frame": "DAY"},
            },
            family.owner_token,
            ("INVALID_AMOUNT", "limit.amountMinor"),
        ),
        (
            {
                "phone": stranger.phone,
                "limit": {"amountMinor": 2_000_000_001, "currency": "RUB", "frame": "DAY"},
            },
            family.owner_token,
            ("INVALID_AMOUNT", "limit.amountMinor"),
        ),
        (
            {
                "phone": stranger.phone,
                "limit": {"amountMinor": 100, "currency": "XXX", "frame": "DAY"},
            },
            family.owner_token,
            ("INVALID_CURRENCY", "limit.currency"),
        ),
    ]
    before = await row_counts(runtime)
    for variables, token, expected in cases:
        payload = await _payload(client, ADD, "familyMemberAdd", token, a=gid(family), **variables)
        assert _codes(payload) == [expected], (variables, payload)
    assert await row_counts(runtime) == before


async def test_an_unknown_frame_is_refused_by_the_schema(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    stranger = await f.person(runtime)
    limit = {"amountMinor": 100, "currency": "RUB", "frame": "YEAR"}
    body = await gql(
        client,
        ADD,
        {"a": gid(family), "phone": stranger.phone, "limit": limit},
        token=family.owner_token,
    )
    assert body["errors"] and "frame" in body["errors"][0]["message"]


async def test_a_full_family_takes_nobody_more(client: httpx.AsyncClient, runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    for _ in range(7):
        await f.add_member(runtime, family)
    stranger = await f.person(runtime)
    payload = await _payload(
        client, ADD, "familyMemberAdd", family.owner_token, a=gid(family), phone=stranger.phone
    )
    assert _codes(payload) == [("FAMILY_FULL", "phone")]


async def test_owner_removes_and_member_leaves(client: httpx.AsyncClient, runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family)
    partner = await f.add_member(runtime, family)
    kid_member = member_gid(await f.member_id(runtime, family, kid))
    payload = await _payload(
        client, REMOVE, "familyMemberRemove", family.owner_token, a=gid(family), m=kid_member
    )
    assert payload["errors"] == []
    phones = sorted(m["phone"] for m in payload["account"]["members"])
    assert phones == sorted([str(family.owner.phone), str(partner.phone)])
    left = await _payload(
        client, LEAVE, "familyLeave", await access_token(runtime, partner), a=gid(family)
    )
    assert left == {"accountId": gid(family), "errors": []}
    viewer = await gql(client, VIEWER, token=await access_token(runtime, partner))
    assert viewer["data"]["viewer"]["familyAccounts"] == []


async def test_member_acts_the_owner_may_not_do(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family)
    partner = await f.add_member(runtime, family)
    kid_token = await access_token(runtime, kid)
    partner_member = member_gid(await f.member_id(runtime, family, partner))
    owner_member = member_gid(await f.member_id(runtime, family, family.owner))
    limit = {"amountMinor": 1, "currency": "RUB", "frame": "DAY"}
    before = await row_counts(runtime)
    checks: list[tuple[str, str, str, dict[str, Any], tuple[str, str]]] = [
        (
            REMOVE,
            "familyMemberRemove",
            kid_token,
            {"m": partner_member},
            ("NOT_OWNER", "accountId"),
        ),
        (
            LIMIT,
            "familyMemberLimitSet",
            kid_token,
            {"m": partner_member, "limit": limit},
            ("NOT_OWNER", "accountId"),
        ),
        (CARDS, "familyPaymentMethodSet", kid_token, {"cards": []}, ("NOT_OWNER", "accountId")),
        (DELETE, "familyDelete", kid_token, {}, ("NOT_OWNER", "accountId")),
        (LEAVE, "familyLeave", family.owner_token, {}, ("OWNER_CANNOT_LEAVE", "accountId")),
        (
            REMOVE,
            "familyMemberRemove",
            family.owner_token,
            {"m": owner_member},
            ("OWNER_IS_MEMBER", "memberId"),
        ),
        (
            LIMIT,
            "familyMemberLimitSet",
            family.owner_token,
            {"m": owner_member, "limit": limit},
            ("OWNER_IS_MEMBER", "memberId"),
        ),
        (
            REMOVE,
            "familyMemberRemove",
            family.owner_token,
            {"m": "nonsense"},
            ("MEMBER_NOT_FOUND", "memberId"),
        ),
        (
            REMOVE,
            "familyMemberRemove",
            family.owner_token,
            {"m": gid(family)},
            ("MEMBER_NOT_FOUND", "memberId"),
        ),
    ]
    for doc, name, token, variables, expected in checks:
        payload = await _payload(client, doc, name, token, a=gid(family), **variables)
        assert _codes(payload) == [expected], (name, variables, payload)
    assert await row_counts(runtime) == before


async def test_a_stranger_sees_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family)
    stranger_token = await access_token(runtime, await f.person(runtime))
    kid_member = member_gid(await f.member_id(runtime, family, kid))
    before = await row_counts(runtime)
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        (REMOVE, "familyMemberRemove", {"m": kid_member}),
        (LEAVE, "familyLeave", {}),
        (DELETE, "familyDelete", {}),
        (CARDS, "familyPaymentMethodSet", {"cards": []}),
    ]
    for doc, name, variables in attempts:
        payload = await _payload(client, doc, name, stranger_token, a=gid(family), **variables)
        assert _codes(payload) == [("NOT_FOUND", "accountId")], (name, payload)
    node = await gql(
        client,
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": gid(family)},
        token=stranger_token,
    )
    assert node["data"]["node"] is None
    viewer = await gql(client, VIEWER, token=stranger_token)
    assert viewer["data"]["viewer"]["familyAccounts"] == []
    assert await row_counts(runtime) == before


async def test_an_edited_limit_applies_at_once(client: httpx.AsyncClient, runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000, LimitFrame.MONTH))
    await f.charge(runtime, family, kid, "ride-1", 800)
    assert not (await f.check(runtime, family, kid, 500)).available
    kid_member = member_gid(await f.member_id(runtime, family, kid))
    limit = {"amountMinor": 2000, "currency": "RUB", "frame": "DAY"}
    payload = await _payload(
        client,
        LIMIT,
        "familyMemberLimitSet",
        family.owner_token,
        a=gid(family),
        m=kid_member,
        limit=limit,
    )
    assert payload["errors"] == []
    allowed = await f.check(runtime, family, kid, 500)
    assert allowed.available and allowed.limit is not None and allowed.limit.remaining == 1200
    lifted = await _payload(
        client,
        LIMIT,
        "familyMemberLimitSet",
        family.owner_token,
        a=gid(family),
        m=kid_member,
        limit=None,
    )
    assert [m["limit"] for m in lifted["account"]["members"]] == [None, None]
    unlimited = await f.check(runtime, family, kid, 10**9)
    assert unlimited.available and unlimited.limit is None


async def test_limits_are_shown_to_the_owner_and_to_each_member_only_their_own(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000, LimitFrame.DAY))
    partner = await f.add_member(runtime, family, spec=f.limit(3000, LimitFrame.WEEK))
    await f.charge(runtime, family, kid, "ride-1", 250)
    owner_view = await gql(client, VIEWER, token=family.owner_token)
    [account] = owner_view["data"]["viewer"]["familyAccounts"]
    limits = {m["phone"]: m["limit"] for m in account["members"]}
    assert limits[kid.phone]["remaining"] == {"amountMinor": 750}
    assert limits[partner.phone]["amount"] == {"amountMinor": 3000, "currency": "RUB"}
    kid_view = await gql(client, VIEWER, token=await access_token(runtime, kid))
    [mine] = kid_view["data"]["viewer"]["familyAccounts"]
    seen = {m["phone"]: (m["limit"], m["limitHidden"]) for m in mine["members"]}
    assert seen[kid.phone][0]["remaining"] == {"amountMinor": 750}
    assert seen[partner.phone] == (None, True)


async def test_cards_are_shared_by_the_owner(client: httpx.AsyncClient, runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(5000, LimitFrame.MONTH))
    first, second = await f.add_card(runtime, family.owner), await f.add_card(runtime, family.owner)
    kids_card = await f.add_card(runtime, kid)
    payload = await _payload(
        client,
        CARDS,
        "familyPaymentMethodSet",
        family.owner_token,
        a=gid(family),
        cards=[second, first, second],
        main=first,
    )
    assert payload["errors"] == []
    assert payload["account"]["paymentMethods"] == [{"id": second}, {"id": first}]
    assert payload["account"]["mainPaymentMethodId"] == first
    methods = await gql(client, PAYMENT_METHODS, token=await access_token(runtime, kid))
    listed = methods["data"]["viewer"]["paymentMethods"]
    assert [m["card"]["id"] for m in listed] == [kids_card, second, first]
    assert listed[0]["familyAccountId"] is None
    assert listed[2]["main"] is True and listed[2]["familyAccountId"] == gid(family)
    assert listed[1]["limit"] == {"remaining": {"amountMinor": 5000}, "frame": "MONTH"}
    before = await row_counts(runtime)
    refusals: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"cards": [kids_card]}, ("CARD_NOT_FOUND", "cardIds.0")),
        ({"cards": [first, "not a card"]}, ("CARD_NOT_FOUND", "cardIds.1")),
        ({"cards": [first], "main": second}, ("MAIN_CARD_NOT_SHARED", "mainCardId")),
        ({"cards": [f"card-{i}" for i in range(6)]}, ("TOO_MANY_CARDS", "cardIds")),
    ]
    for variables, expected in refusals:
        refused = await _payload(
            client, CARDS, "familyPaymentMethodSet", family.owner_token, a=gid(family), **variables
        )
        assert _codes(refused) == [expected], variables
    assert await row_counts(runtime) == before


async def test_delete_is_refused_while_a_ride_holds(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000))
    assert (await f.check(runtime, family, kid, 300, order_id="ride-1")).available
    refused = await _payload(client, DELETE, "familyDelete", family.owner_token, a=gid(family))
    assert _codes(refused) == [("RIDE_IN_PROGRESS", "accountId")]
    await f.charge(runtime, family, kid, "ride-1", 300)
    deleted = await _payload(client, DELETE, "familyDelete", family.owner_token, a=gid(family))
    assert deleted == {"accountId": gid(family), "errors": []}
    viewer = await gql(client, VIEWER, token=await access_token(runtime, kid))
    assert viewer["data"]["viewer"]["familyAccounts"] == []


async def test_the_embedded_default_schedules_no_migration(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    await gql(client, PAYMENT_METHODS, token=family.owner_token)
    launch = await gql(
        client,
        "query { launch { family { memberRole passportAccount } } }",
        token=family.owner_token,
    )
    assert launch["data"]["launch"]["family"] == {"memberRole": "OWNER", "passportAccount": False}
    assert await f.migration_row(runtime, family) is None
