"""Every type implementing `Node` resolves through `node(id:)`, on both backends.

The test walks the schema itself: each Node type needs a factory below (an object owned by
`owner`) and a visibility rule, so a new Node type without both fails here before anyone
ships a type whose refetch answers "Unexpected error". For every type, `node(id:)`:
- returns the object to admins, and to its owner when it has one;
- returns null to another user and to anonymous callers (public types excepted);
- never answers an error, whoever asks;
and an id that names no Node type, or is no global id at all, is null too, never an error.
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType
from strawberry import relay

from app.models.base import utcnow
from app.models.goals import GoalNotification, GoalProgressEntry, NotificationKind
from app.models.identity import AuditLog, Group, Role, User
from app.models.operations import JobFailure, JobPing
from app.models.orders import Order
from app.models.promocodes import (
    AttemptOperation,
    Audience,
    Plan,
    Promocode,
    PromocodeAttempt,
    PromocodeGrant,
    PromocodeKind,
    Purchase,
    Rejection,
)
from app.models.wallet import WalletEntry, WalletEntryKind
from app.runtime import Runtime
from schema.schema import build_schema
from tests.conftest import make_client
from tests.conftest import test_settings as make_settings
from tests.factories import family as families
from tests.factories.goals import assign, create_template
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.notifier import create_client as create_corp_client
from tests.factories.notifier import emails as corp_emails
from tests.factories.notifier import load_catalog as load_notifier_catalog
from tests.factories.notifier import publish_and_handle
from tests.factories.promotions import create_promotion
from tests.helpers import gql


class Seen(enum.Enum):
    OWNER = "the owner and admins"
    ADMIN = "admins only"
    PUBLIC = "anyone"
    OWNER_OR_SERVICE = "the owner, admins and services"


Factory = Callable[[Runtime, User], Awaitable[str]]  # -> the node key (the id in the global id)


async def _add(runtime: Runtime, *rows: Any) -> None:
    async with runtime.session_factory() as session, session.begin():
        for row in rows:
            session.add(row)
            await session.flush()


async def _user(runtime: Runtime, owner: User) -> str:
    return str(owner.id)


async def _group(runtime: Runtime, owner: User) -> str:
    group = Group(id=uuid.uuid4(), name=f"group-{uuid.uuid4().hex[:8]}")
    await _add(runtime, group)
    return str(group.id)


async def _user_goal(runtime: Runtime, owner: User) -> str:
    template = await create_template(runtime)
    return str((await assign(runtime, owner.id, template.id)).id)


async def _template(runtime: Runtime, owner: User) -> str:
    return (await create_template(runtime)).id


async def _notification(runtime: Runtime, owner: User) -> str:
    goal_id = uuid.UUID(await _user_goal(runtime, owner))
    row = GoalNotification(
        id=uuid.uuid4(), user_id=owner.id, user_goal_id=goal_id, kind=NotificationKind.ASSIGNED
    )
    await _add(runtime, row)
    return str(row.id)


def _order(owner: User) -> Order:
    now = utcnow()
    return Order(
        order_id=f"o-{uuid.uuid4().hex[:12]}",
        user_id=owner.id,
        kind="RIDE",
        status="COMPLETE",
        ride_class="comfort",
        payment_method="card",
        price_minor=50_000,
        currency="RUB",
        ordered_at=now - timedelta(minutes=30),
        completed_at=now - timedelta(minutes=5),
        city_timezone="Europe/Moscow",
        data={},
        content_hash="0" * 64,
    )


async def _log_entry(runtime: Runtime, owner: User) -> str:
    order = _order(owner)
    entry = GoalProgressEntry(
        id=uuid.uuid4(),
        order_id=order.order_id,
        user_id=owner.id,
        reason="NO_ACTIVE_GOAL",
        counted=False,
    )
    await _add(runtime, order, entry)
    return str(entry.id)


async def _wallet_entry(runtime: Runtime, owner: User) -> str:
    entry = WalletEntry(
        id=uuid.uuid4(),
        user_id=owner.id,
        amount_minor=30_000,
        currency="RUB",
        kind=WalletEntryKind.GOAL_BONUS,
        source_key=f"test:{uuid.uuid4()}",
    )
    await _add(runtime, entry)
    return str(entry.id)


def _plan() -> Plan:
    slug = f"plan-{uuid.uuid4().hex[:8]}"
    return Plan(
        id=uuid.uuid4(), slug=slug, name=slug, price_minor=29_900, currency="RUB", duration_days=30
    )


def _promocode(audience: Audience = Audience.PUBLIC) -> Promocode:
    return Promocode(
        id=uuid.uuid4(),
        code=f"NODE-{uuid.uuid4().hex[:8].upper()}",
        kind=PromocodeKind.PERCENT,
        value=10,
        audience=audience,
        created_by="test",
    )


async def _plan_node(runtime: Runtime, owner: User) -> str:
    plan = _plan()
    await _add(runtime, plan)
    return str(plan.id)


async def _purchase(runtime: Runtime, owner: User) -> str:
    plan = _plan()
    purchase = Purchase(
        id=uuid.uuid4(),
        user_id=owner.id,
        plan_id=plan.id,
        list_price_minor=plan.price_minor,
        final_price_minor=plan.price_minor,
        currency=plan.currency,
        created_by=f"user:{owner.id}",
    )
    await _add(runtime, plan, purchase)
    return str(purchase.id)


async def _promocode_node(runtime: Runtime, owner: User) -> str:
    promocode = _promocode()
    await _add(runtime, promocode)
    return str(promocode.id)


async def _grant(runtime: Runtime, owner: User) -> str:
    promocode = _promocode(Audience.GRANTED)
    grant = PromocodeGrant(
        id=uuid.uuid4(), promocode_id=promocode.id, user_id=owner.id, granted_by="test"
    )
    await _add(runtime, promocode, grant)
    return str(grant.id)


async def _attempt(runtime: Runtime, owner: User) -> str:
    attempt = PromocodeAttempt(
        id=uuid.uuid4(),
        user_id=owner.id,
        code_entered="NOPE",
        operation=AttemptOperation.QUOTE,
        reason=Rejection.NOT_FOUND,
    )
    await _add(runtime, attempt)
    return str(attempt.id)


async def _job_failure(runtime: Runtime, owner: User) -> str:
    failure = JobFailure(
        id=uuid.uuid4(),
        message_id=uuid.uuid4(),
        actor="system.ping",
        queue="default",
        kwargs={},
        error="RuntimeError: boom",
    )
    await _add(runtime, failure)
    return str(failure.id)


async def _job_ping(runtime: Runtime, owner: User) -> str:
    ping = JobPing(id=uuid.uuid4(), note="node test", requested_by="test")
    await _add(runtime, ping)
    return str(ping.id)


async def _audit_entry(runtime: Runtime, owner: User) -> str:
    entry = AuditLog(
        id=uuid.uuid4(), actor=f"user:{owner.id}", action="user.block", target=f"user:{owner.id}"
    )
    await _add(runtime, entry)
    return str(entry.id)


async def _promotion(runtime: Runtime, owner: User) -> str:
    return str((await create_promotion(runtime)).id)


async def _corp_email(runtime: Runtime, owner: User) -> str:
    await load_notifier_catalog(runtime)
    corp = await create_corp_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", {"limitMinor": 1, "currency": "RUB"})
    [email] = await corp_emails(runtime, corp)
    return str(email.id)


async def _family_account(runtime: Runtime, owner: User) -> str:
    family = await families.create_family(runtime, owner)
    await families.add_member(runtime, family)  # a member too: the owner is not alone in it
    return str(family.id)


@dataclass(frozen=True)
class NodeCase:
    factory: Factory
    seen: Seen


NODE_TYPES: dict[str, NodeCase] = {
    "User": NodeCase(_user, Seen.OWNER),
    "Group": NodeCase(_group, Seen.ADMIN),
    "UserGoal": NodeCase(_user_goal, Seen.OWNER),
    "GoalNotification": NodeCase(_notification, Seen.OWNER),
    "GoalProgressLogEntry": NodeCase(_log_entry, Seen.OWNER),
    "GoalTemplate": NodeCase(_template, Seen.ADMIN),
    "WalletEntryNode": NodeCase(_wallet_entry, Seen.OWNER),
    "Plan": NodeCase(_plan_node, Seen.PUBLIC),
    "Purchase": NodeCase(_purchase, Seen.OWNER_OR_SERVICE),
    "Promocode": NodeCase(_promocode_node, Seen.ADMIN),
    "PromocodeGrant": NodeCase(_grant, Seen.ADMIN),
    "PromocodeAttempt": NodeCase(_attempt, Seen.ADMIN),
    "JobFailure": NodeCase(_job_failure, Seen.ADMIN),
    "JobPing": NodeCase(_job_ping, Seen.ADMIN),
    "AuditLogEntry": NodeCase(_audit_entry, Seen.ADMIN),
    "Promotion": NodeCase(_promotion, Seen.ADMIN),
    "CorpEmail": NodeCase(_corp_email, Seen.ADMIN),
    # its members see it too: test_a_family_member_sees_the_family
    "FamilyAccount": NodeCase(_family_account, Seen.OWNER),
}

NODE = "query Node($id: ID!) { node(id: $id) { __typename id } }"


def node_types() -> set[str]:
    schema = build_schema(make_settings())._schema
    return {
        name
        for name, graphql_type in schema.type_map.items()
        if isinstance(graphql_type, GraphQLObjectType)
        and any(interface.name == "Node" for interface in graphql_type.interfaces)
    }


def test_every_node_type_has_a_case() -> None:
    """A Node type added without a factory and a visibility rule fails here."""
    assert node_types() == set(NODE_TYPES)


@pytest.mark.parametrize("type_name", sorted(NODE_TYPES))
async def test_node_resolves_for_whom_it_should(
    type_name: str, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    case = NODE_TYPES[type_name]
    owner = await create_user(runtime)
    stranger = await create_user(runtime)
    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    node_id = relay.to_base64(type_name, await case.factory(runtime, owner))
    callers = {
        "owner": await access_token(runtime, owner),
        "admin": await access_token(runtime, admin),
        "another user": await access_token(runtime, stranger),
        "a service": await service_token(runtime),
        "anonymous": None,
    }
    sees = {
        Seen.OWNER: {"owner", "admin"},
        Seen.ADMIN: {"admin"},
        Seen.PUBLIC: set(callers),
        Seen.OWNER_OR_SERVICE: {"owner", "admin", "a service"},
    }[case.seen]
    for caller, token in callers.items():
        body = await gql(client, NODE, {"id": node_id}, token=token)
        assert "errors" not in body, (type_name, caller, body)
        expected = {"__typename": type_name, "id": node_id} if caller in sees else None
        assert body["data"]["node"] == expected, (type_name, caller)


FAMILY = """
query Family($id: ID!) { node(id: $id) { id ... on FamilyAccount { memberRole } } }"""


async def test_a_family_member_sees_the_family(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """FamilyAccount is seen by every member, not only by its owner; each as what they are
    in it, an admin outside it as no one (`memberRole: null`); one who left sees it no more."""
    family = await families.create_family(runtime)
    member = await families.add_member(runtime, family)
    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    node_id = relay.to_base64("FamilyAccount", str(family.id))
    roles = {
        family.owner_token: "OWNER",
        await access_token(runtime, member): "MEMBER",
        await access_token(runtime, admin): None,
    }
    for token, role in roles.items():
        body = await gql(client, FAMILY, {"id": node_id}, token=token)
        assert body == {"data": {"node": {"id": node_id, "memberRole": role}}}, (role, body)
    leave = """
    mutation Leave($id: ID!) { familyLeave(input: {accountId: $id}) { errors { code } } }"""
    member_token = await access_token(runtime, member)
    body = await gql(client, leave, {"id": node_id}, token=member_token)
    assert body == {"data": {"familyLeave": {"errors": []}}}, body
    body = await gql(client, FAMILY, {"id": node_id}, token=member_token)
    assert body == {"data": {"node": None}}, body


@pytest.mark.parametrize("type_name", sorted(NODE_TYPES))
async def test_an_unknown_or_malformed_id_is_null(
    type_name: str, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    token = await access_token(runtime, admin)
    for key in (str(uuid.uuid4()), "not-a-uuid", ""):
        body = await gql(client, NODE, {"id": relay.to_base64(type_name, key)}, token=token)
        assert body == {"data": {"node": None}}, (type_name, key, body)


ODD_IDS = {
    "an unknown type": relay.to_base64("Nope", "x"),
    "a type that is no Node": relay.to_base64("Money", str(uuid.uuid4())),
    "the root type": relay.to_base64("Query", "x"),
    "the Node interface": relay.to_base64("Node", str(uuid.uuid4())),
    "an input type": relay.to_base64("OrderRecordInput", "x"),
    "an enum": relay.to_base64("OrderStatus", "COMPLETE"),
    "a lower-case type name": relay.to_base64("user", str(uuid.uuid4())),
    "not base64": "!!not base64!!",
    "base64 without a colon": base64.b64encode(b"User").decode(),
    "base64 of bytes that are not UTF-8": base64.b64encode(b"\xff\xfe:x").decode(),
    "empty": "",
}


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("node_id", ODD_IDS.values(), ids=ODD_IDS.keys())
async def test_an_id_naming_no_node_type_or_malformed_is_null_and_no_error(
    node_id: str, env: str, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    token = await access_token(runtime, admin)
    async with make_client(runtime, env=env) as client:
        for caller in (token, None):
            body = await gql(client, NODE, {"id": node_id}, token=caller)
            assert body == {"data": {"node": None}}, (caller is None, body)
    assert "unexpected_error" not in caplog.text
