"""Object-level authorization: another user on the victim's real ids (both backends).

`test_authorization.py` proves who may call each root field; this proves what a user who may
call a field can do with objects that belong to someone else. A victim gets real data from
the factories (goals done and active, notifications, an achievement, the progress log, a
wallet entry, a confirmed purchase with its idempotency key, personal and group promocode
grants, a refresh token, a rejected attempt, an audit entry, a family with a limited member
who rode on it, a shared card and the owner's limit notification); an attacker, an ordinary
USER with nothing of their own but a phone, then calls every field with the victim's real
ids, codes and secrets (where a try needs the attacker's own family, its case makes one
first: `Case.setup`). `OWNED` (tests/platform/access.py) declares, per root field a user may call,
how it refers to user-owned objects and what the attacker gets for each of the victim's
objects (`Outcome`: null, NOT_FOUND, ignored, ...). Every try must:
- answer exactly the declared outcome;
- contain none of the victim's ids, global ids, email, codes, order id, template slugs or
  refresh token anywhere in the response;
- change no row (a digest of every row of every table, tests/snapshots.py), except the
  attacker's own new rows in the tables the declaration names (a rejected code's attempt);
and then the owner (or an admin, for admin-only objects) gets the object, so every try is
known to have named something real.

The declaration is checked against the schema: a root field a user may call that has no
line in `OWNED` fails, a field with an ID-typed argument or input field must name the
objects it is tried with, and every user-owned Node type of `test_nodes.py` is tried on
`node(id:)`. ADMIN and SERVICE fields are called by the attacker with the victim's real ids
in every id-like argument (`VICTIM_LEAVES`): FORBIDDEN, nothing changed, nothing shown.
Subscriptions take no ids (`goalProgress` reads the caller's own channel:
tests/goals/test_subscription.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    Undefined,
    get_named_type,
    is_leaf_type,
)
from sqlalchemy import select
from strawberry.relay import to_base64

from app.models.base import utcnow
from app.models.family import FamilyAccount
from app.models.family import FamilyNotification as FamilyNotificationRow
from app.models.goals import GoalNotification, GoalProgressEntry, UserGoal
from app.models.identity import AuditLog, Group, RefreshToken, Role, User, UserStatus
from app.models.promocodes import AttemptOperation, Audience, Plan, Promocode, PromocodeAttempt
from app.models.promocodes import Rejection as RejectionReason
from app.models.wallet import WalletEntry
from app.runtime import Runtime
from app.services.family import accounts as family_accounts
from app.services.goals.assignment import Assignment, assign_goal
from app.services.identity import groups as group_service
from app.services.identity import sessions as session_service
from app.services.promocodes import purchases as purchase_service
from app.services.promocodes.attempts import Caller, PromocodeRejected, record_attempt
from tests.factories import family as families
from tests.factories.goals import create_template, finish, record_and_process
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.orders import order
from tests.factories.promocodes import create_plan, create_promocode, grant_promocode
from tests.factories.promotions import completed as completed_promotion
from tests.factories.promotions import run_of
from tests.helpers import error_codes, gql
from tests.platform.access import ACCESS, OWNED, Access, Outcome, Refers
from tests.platform.test_authorization import _sample, _schema
from tests.platform.test_nodes import NODE_TYPES, Seen
from tests.snapshots import Snapshot, changes, table_rows

VICTIM_PASSWORD = "the-victims-own-passphrase"
VICTIM_KEY = "victim-purchase-1"
VICTIM_IP = "198.51.100.9"
USER_FIELDS = {Access.ANYONE, Access.SIGNED_IN, Access.USER}
ID_SCALARS = {"ID", "UUID"}


def gid(type_name: str, key: object) -> str:
    return to_base64(type_name, str(key))


# ---- the victim's world ---------------------------------------------------------------------


@dataclass
class Victim:
    user: User
    token: str
    refresh_token: str
    group: Group
    done_goal: UserGoal  # finished: an ACHIEVEMENT notification, a wallet bonus
    active_goal: UserGoal
    templates: tuple[str, ...]
    notifications: tuple[uuid.UUID, ...]
    log_entries: tuple[uuid.UUID, ...]
    wallet_entries: tuple[uuid.UUID, ...]
    order_id: str
    plan: Plan
    personal_code: Promocode
    personal_grant: uuid.UUID
    group_code: Promocode
    group_grant: uuid.UUID
    purchase: uuid.UUID
    attempt: uuid.UUID
    audit_entry: uuid.UUID
    promotion: uuid.UUID  # a promotion the victim completed (shared; the run is theirs)
    promotion_key: str
    promotion_run: uuid.UUID
    family: uuid.UUID  # the victim owns it
    family_name: str
    member: User  # the family's other member: limited, one ride charged on the family
    member_token: str
    family_member: uuid.UUID  # the member's FamilyMember id
    family_order_id: str  # the member's family ride
    card: str  # the victim's card, shared with the family
    family_notifications: tuple[uuid.UUID, ...]  # the victim's: the member's LIMIT_80

    @property
    def email(self) -> str:
        assert self.user.email is not None
        return self.user.email

    def node_ids(self) -> dict[str, str]:
        """A global id of the victim's object of each Node type tried on `node(id:)`."""
        return {
            "User": gid("User", self.user.id),
            "UserGoal": gid("UserGoal", self.done_goal.id),
            "GoalNotification": gid("GoalNotification", self.notifications[0]),
            "GoalProgressLogEntry": gid("GoalProgressLogEntry", self.log_entries[0]),
            "WalletEntryNode": gid("WalletEntryNode", self.wallet_entries[0]),
            "Purchase": gid("Purchase", self.purchase),
            "PromocodeGrant": gid("PromocodeGrant", self.personal_grant),
            "PromocodeAttempt": gid("PromocodeAttempt", self.attempt),
            "AuditLogEntry": gid("AuditLogEntry", self.audit_entry),
            "FamilyAccount": gid("FamilyAccount", self.family),
        }

    def markers(self) -> dict[str, set[str]]:
        """What would give the victim's objects away, per object: raw and global ids, the
        email, codes, the order id, template slugs, the refresh token."""

        def ids(type_name: str, keys: tuple[uuid.UUID, ...]) -> set[str]:
            return {str(k) for k in keys} | {gid(type_name, k) for k in keys}

        goals = (self.done_goal.id, self.active_goal.id)
        return {
            "User": ids("User", (self.user.id,)) | {self.email},
            "Group": ids("Group", (self.group.id,)) | {self.group.name},
            "UserGoal": ids("UserGoal", goals) | set(self.templates),
            "GoalNotification": ids("GoalNotification", self.notifications),
            "Achievement": ids("UserGoal", (self.done_goal.id,)),
            "GoalProgressLogEntry": ids("GoalProgressLogEntry", self.log_entries),
            "WalletEntryNode": ids("WalletEntryNode", self.wallet_entries),
            "Purchase": ids("Purchase", (self.purchase,)),
            "personal grant": ids("PromocodeGrant", (self.personal_grant,))
            | ids("Promocode", (self.personal_code.id,))
            | {self.personal_code.code},
            "group grant": ids("PromocodeGrant", (self.group_grant,))
            | ids("Promocode", (self.group_code.id,))
            | {self.group_code.code},
            "PromocodeAttempt": ids("PromocodeAttempt", (self.attempt,)),
            "AuditLogEntry": ids("AuditLogEntry", (self.audit_entry,)),
            "order": {self.order_id},
            "refresh token": {self.refresh_token},
            "PromotionRun": {str(self.promotion_run), self.promotion_key},
            "FamilyAccount": ids("FamilyAccount", (self.family,)) | {self.family_name},
            "FamilyMember": ids("FamilyMember", (self.family_member,))
            | ids("User", (self.member.id,))
            | {self.member_phone, self.family_order_id},
            "PaymentCard": {self.card},
            "FamilyNotification": ids("FamilyNotification", self.family_notifications),
        }

    @property
    def member_phone(self) -> str:
        assert self.member.phone is not None
        return self.member.phone

    def all_markers(self) -> set[str]:
        return set().union(*self.markers().values())


async def _ids(runtime: Runtime, column: Any, *where: Any) -> tuple[uuid.UUID, ...]:
    async with runtime.session_factory() as session:
        return tuple((await session.scalars(select(column).where(*where))).all())


async def create_victim(runtime: Runtime) -> Victim:
    """A user with something of every kind a user owns, made by the domains' own code."""
    user = await create_user(runtime, password=VICTIM_PASSWORD)
    caller = Caller(user, VICTIM_IP)
    async with runtime.session_factory() as session, session.begin():
        issued = await session_service.issue_tokens(
            session, user, uuid.uuid4(), runtime.codec, runtime.settings
        )
        group = await group_service.create_group(
            session, "user:admin", f"riders-{uuid.uuid4().hex[:8]}", ""
        )
        await group_service.add_members(session, "user:admin", group.id, [user.id])

    done_template = await create_template(runtime, conditions={"target": 1, "periodDays": 5})
    next_template = await create_template(runtime)
    async with runtime.session_factory() as session, session.begin():
        done = await assign_goal(
            session, Assignment(user.id, done_template.id), actor="test", now=utcnow(), notify=True
        )
    ride = order(user.id)
    await record_and_process(runtime, ride)
    assert await finish(runtime, done.id)
    async with runtime.session_factory() as session, session.begin():
        active = await assign_goal(
            session, Assignment(user.id, next_template.id), actor="test", now=utcnow(), notify=True
        )

    plan = await create_plan(runtime)
    personal = await create_promocode(runtime, audience=Audience.GRANTED, max_uses_per_user=3)
    personal_grant = await grant_promocode(runtime, personal, user=user)
    group_code = await create_promocode(runtime, audience=Audience.GRANTED)
    group_grant = await grant_promocode(runtime, group_code, group=group)
    async with runtime.session_factory() as session, session.begin():
        purchase, _ = await purchase_service.create_purchase(
            session,
            caller,
            plan_id=plan.id,
            code=personal.code,
            idempotency_key=VICTIM_KEY,
            settings=runtime.settings,
        )
    async with runtime.session_factory() as session, session.begin():
        await purchase_service.confirm_purchase(session, purchase.id, actor="service:test")
        await record_attempt(
            session,
            caller=caller,
            code="NO-SUCH-CODE",
            plan_id=plan.id,
            operation=AttemptOperation.QUOTE,
            rejection=PromocodeRejected(RejectionReason.NOT_FOUND),
        )

    promotion = await completed_promotion(runtime, user.id)

    family_name = f"victims-family-{uuid.uuid4().hex[:8]}"
    family = await families.create_family(runtime, user, name=family_name)
    member = await families.add_member(runtime, family, spec=families.limit(10_000))
    card = await families.add_card(runtime, user)
    await families.share_cards(runtime, family, [card])
    family_ride = f"family-ride-{uuid.uuid4().hex[:8]}"
    await families.charge(runtime, family, member, family_ride, 8_500)  # 85 %: LIMIT_80
    victim = Victim(
        user=user,
        token=await access_token(runtime, user),
        refresh_token=issued.refresh_token,
        group=group,
        done_goal=done,
        active_goal=active,
        templates=(done_template.id, next_template.id),
        notifications=await _ids(runtime, GoalNotification.id, GoalNotification.user_id == user.id),
        log_entries=await _ids(runtime, GoalProgressEntry.id, GoalProgressEntry.user_id == user.id),
        wallet_entries=await _ids(runtime, WalletEntry.id, WalletEntry.user_id == user.id),
        order_id=ride.order_id,
        plan=plan,
        personal_code=personal,
        personal_grant=personal_grant.id,
        group_code=group_code,
        group_grant=group_grant.id,
        purchase=purchase.id,
        attempt=(await _ids(runtime, PromocodeAttempt.id, PromocodeAttempt.user_id == user.id))[0],
        audit_entry=(
            await _ids(runtime, AuditLog.id, AuditLog.target == f"purchase:{purchase.id}")
        )[0],
        promotion=promotion.id,
        promotion_key=promotion.key,
        promotion_run=(await run_of(runtime, user.id, promotion)).id,
        family=family.id,
        family_name=family_name,
        member=member,
        member_token=await access_token(runtime, member),
        family_member=await families.member_id(runtime, family, member),
        family_order_id=family_ride,
        card=card,
        family_notifications=await _ids(
            runtime, FamilyNotificationRow.id, FamilyNotificationRow.user_id == user.id
        ),
    )
    assert len(victim.notifications) == 3  # ASSIGNED twice, ACHIEVEMENT once
    assert victim.log_entries and victim.wallet_entries
    assert len(victim.family_notifications) == 1  # the member's LIMIT_80, to the owner
    return victim


@dataclass
class World:
    runtime: Runtime
    client: httpx.AsyncClient
    victim: Victim
    attacker: User
    attacker_token: str
    admin_token: str
    attacker_family: uuid.UUID | None = None  # made by the first try that needs one

    async def call(self, document: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
        return await gql(self.client, document, variables, token=token)


async def create_world(runtime: Runtime, client: httpx.AsyncClient) -> World:
    victim = await create_victim(runtime)
    attacker = await create_user(runtime, phone=families.next_phone())
    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    return World(
        runtime,
        client,
        victim,
        attacker,
        await access_token(runtime, attacker),
        await access_token(runtime, admin),
    )


# ---- the operations ---------------------------------------------------------------------------

NODE = "query Node($id: ID!) { node(id: $id) { __typename id } }"
VIEWER = """
query Viewer {
  viewer {
    user { id email phone status groups { id name memberCount } }
    goals { active { ...Goal } next { ...Goal } recent { ...Goal } }
    achievements(unseenOnly: false) { goalId goal { id goalId } title seen }
    goalNotifications(unseenOnly: false) { id kind seen goal { id goalId } }
    goalProgressLog { edges { node { id orderId goalId userGoalId counted } } }
    wallet {
      balances { amountMinor currency }
      entries { edges { node { id orderId kind amount { amountMinor currency } } } }
    }
    promocodes { code description }
    purchases { edges { node { id status promocode buyer { id email } plan { id } } } }
    promotion { status progress { current total } promotion { key } rides { orderId } }
    familyAccounts {
      id name memberRole
      members { id phone role limit { remaining { amountMinor } } limitHidden }
      paymentMethods { id last4 } mainPaymentMethodId
    }
    paymentMethods {
      card { id last4 } familyAccountId main
      limit { used { amountMinor } remaining { amountMinor } }
    }
    familyNotifications(unseenOnly: false) { id kind familyAccountId details seenAt }
  }
}
fragment Goal on UserGoal { id goalId status progress { current total } }
"""
# Where in the owner's `viewer` each object shows (the control that it is there to find).
VIEWER_PARTS = {
    "User": "user",
    "Group": "user",
    "UserGoal": "goals",
    "GoalNotification": "goalNotifications",
    "Achievement": "achievements",
    "GoalProgressLogEntry": "goalProgressLog",
    "WalletEntryNode": "wallet",
    "Purchase": "purchases",
    "personal grant": "promocodes",
    "group grant": "promocodes",
    "PromotionRun": "promotion",
    "FamilyAccount": "familyAccounts",
    "FamilyMember": "familyAccounts",
    "PaymentCard": "paymentMethods",
    "FamilyNotification": "familyNotifications",
}
LAUNCH = """
query Launch {
  launch {
    personalGoals { hasUnseenAchievements }
    promotionBadge
    family { familyAccountId memberRole passportAccount }
  }
}"""
REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { user { id email } tokens { accessToken refreshToken } errors { code } }
}"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { user { id email } tokens { accessToken refreshToken } errors { code } }
}"""
LOGOUT = """
mutation Logout($token: String!) { logout(input: {refreshToken: $token}) { errors { code } } }"""
ACCOUNT_DELETE = """
mutation Delete($password: String!) {
  accountDelete(input: {password: $password}) { errors { code field } }
}"""
MARK_NOTIFICATIONS = """
mutation Mark($ids: [ID!]!) {
  goalNotificationsMarkSeen(input: {ids: $ids}) { marked errors { code field } }
}"""
MARK_ACHIEVEMENTS = """
mutation Mark($ids: [ID!]!) {
  achievementsMarkSeen(input: {goalIds: $ids}) { marked hasUnseenAchievements errors { code } }
}"""
QUOTE = """
mutation Quote($planId: ID!, $code: String!) {
  promocodeQuote(input: {planId: $planId, code: $code}) {
    quote { finalPrice { amountMinor } discount { amountMinor } }
    errors { code field }
  }
}"""
PURCHASE = """
mutation Buy($planId: ID!, $code: String, $key: String!) {
  purchaseCreate(input: {planId: $planId, code: $code, idempotencyKey: $key}) {
    purchase { id status promocode buyer { id } }
    errors { code field }
  }
}"""


Variables = Callable[[Victim], dict[str, Any]]
Check = Callable[[World, dict[str, Any]], None]
Control = Callable[[World], Awaitable[None]]
Setup = Callable[[World], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    document: str
    variables: Variables
    control: Control | None  # what the owner (or an admin) gets: proof the object is real
    expect: Check | None = None  # more about the attacker's answer than the outcome says
    # The attacker's own objects the try needs, made before the rows are snapshot; the
    # variables it returns replace the victim's (the attacker's own family's id).
    setup: Setup | None = None


def _payload(body: dict[str, Any], field: str) -> dict[str, Any]:
    assert "errors" not in body, body
    value: dict[str, Any] = body["data"][field]
    return value


def _codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["errors"]]


# node(id:)


def _node_case(type_name: str) -> Case:
    async def control(world: World) -> None:
        seer = world.victim.token
        if NODE_TYPES[type_name].seen not in (Seen.OWNER, Seen.OWNER_OR_SERVICE):
            seer = world.admin_token  # an admin-only type: the owner doesn't see it either
        node_id = world.victim.node_ids()[type_name]
        body = await world.call(NODE, {"id": node_id}, seer)
        assert body == {"data": {"node": {"__typename": type_name, "id": node_id}}}, body

    return Case(NODE, lambda victim: {"id": victim.node_ids()[type_name]}, control)


# viewer and launch


def _viewer_case(obj: str) -> Case:
    async def control(world: World) -> None:
        body = await world.call(VIEWER, {}, world.victim.token)
        part = json.dumps(_payload(body, "viewer")[VIEWER_PARTS[obj]])
        assert any(marker in part for marker in world.victim.markers()[obj]), (obj, part)

    def expect(world: World, body: dict[str, Any]) -> None:
        viewer = _payload(body, "viewer")
        assert viewer["user"]["id"] == gid("User", world.attacker.id)
        assert viewer["user"]["groups"] == []
        assert viewer["familyAccounts"] == viewer["paymentMethods"] == [], viewer
        assert viewer["familyNotifications"] == [], viewer

    return Case(VIEWER, lambda victim: {}, control, expect)


async def _launch_control(world: World) -> None:
    body = await world.call(LAUNCH, {}, world.victim.token)
    assert _payload(body, "launch") == {
        "personalGoals": {"hasUnseenAchievements": True},
        "promotionBadge": "REWARD_READY",
        "family": {
            "familyAccountId": gid("FamilyAccount", world.victim.family),
            "memberRole": "OWNER",
            "passportAccount": False,
        },
    }


def _launch_expect(world: World, body: dict[str, Any]) -> None:
    assert _payload(body, "launch") == {
        "personalGoals": {"hasUnseenAchievements": False},
        "promotionBadge": None,
        "family": None,
    }


# identity


async def _login_control(world: World) -> None:
    data = {"login": world.victim.email, "password": VICTIM_PASSWORD}
    body = await world.call(LOGIN, {"input": data}, world.attacker_token)
    assert _payload(body, "login")["errors"] == []  # the victim's own password does sign in


async def _logout_control(world: World) -> None:
    before = await table_rows(world.runtime)
    body = await world.call(LOGOUT, {"token": world.victim.refresh_token}, world.victim.token)
    assert _payload(body, "logout") == {"errors": []}
    revoked = changes(before, await table_rows(world.runtime))
    assert set(revoked) == {RefreshToken.__tablename__}, revoked  # the owner's call revokes


async def _account_delete_control(world: World) -> None:
    body = await world.call(ACCOUNT_DELETE, {"password": VICTIM_PASSWORD}, world.victim.token)
    assert _payload(body, "accountDelete") == {"errors": []}
    async with world.runtime.session_factory() as session:
        user = await session.get(User, world.victim.user.id)
        assert user is not None and user.status is UserStatus.DELETED


# goals


async def _notifications_control(world: World) -> None:
    ids = [gid("GoalNotification", n) for n in world.victim.notifications]
    body = await world.call(MARK_NOTIFICATIONS, {"ids": ids}, world.victim.token)
    assert _payload(body, "goalNotificationsMarkSeen") == {"marked": 3, "errors": []}


async def _achievements_control(world: World) -> None:
    ids = [gid("UserGoal", world.victim.done_goal.id)]
    body = await world.call(MARK_ACHIEVEMENTS, {"ids": ids}, world.victim.token)
    assert _payload(body, "achievementsMarkSeen") == {
        "marked": 1,
        "hasUnseenAchievements": False,
        "errors": [],
    }


# promocodes


def _code(victim: Victim, obj: str) -> str:
    return victim.group_code.code if obj == "group grant" else victim.personal_code.code


def _quote_case(obj: str) -> Case:
    async def control(world: World) -> None:
        variables = {"planId": gid("Plan", world.victim.plan.id), "code": _code(world.victim, obj)}
        body = await world.call(QUOTE, variables, world.victim.token)
        payload = _payload(body, "promocodeQuote")
        assert payload["errors"] == [] and payload["quote"]["discount"]["amountMinor"] > 0, body

    return Case(
        QUOTE,
        lambda victim: {"planId": gid("Plan", victim.plan.id), "code": _code(victim, obj).lower()},
        control,
    )


def _purchase_case(obj: str) -> Case:
    key = VICTIM_KEY if obj == "idempotency key" else f"attacker-{obj}"

    async def control(world: World) -> None:
        victim = world.victim
        variables = {"planId": gid("Plan", victim.plan.id), "code": _code(victim, obj), "key": key}
        body = await world.call(PURCHASE, variables, victim.token)
        payload = _payload(body, "purchaseCreate")
        assert payload["errors"] == [], body
        assert payload["purchase"]["buyer"] == {"id": gid("User", victim.user.id)}
        if obj == "idempotency key":  # the victim's retry replays the victim's purchase
            assert payload["purchase"]["id"] == gid("Purchase", victim.purchase)

    return Case(
        PURCHASE,
        lambda victim: {
            "planId": gid("Plan", victim.plan.id),
            "code": _code(victim, obj),
            "key": key,
        },
        control,
    )


# promotions

PROMOTION_START = """
mutation Start($id: ID!) {
  promotionStart(input: {promotionId: $id}) { promotion { status } errors { code field } }
}"""
PROMOTION_REWARD = """
mutation Reward($id: ID!) {
  promotionReward(input: {promotionId: $id}) {
    reward { productId amount { amountMinor currency } } errors { code field }
  }
}"""
PROMOTION_ACCEPT = """
mutation Accept($id: ID!) {
  promotionRewardAccept(input: {promotionId: $id}) { application { id } errors { code field } }
}"""


async def _promotion_reward_control(world: World) -> None:
    variables = {"id": gid("Promotion", world.victim.promotion)}
    body = await world.call(PROMOTION_REWARD, variables, world.victim.token)
    payload = _payload(body, "promotionReward")
    assert payload["errors"] == [] and payload["reward"]["productId"] == 80, body


def _promotion_case(document: str) -> Case:
    return Case(
        document, lambda v: {"id": gid("Promotion", v.promotion)}, _promotion_reward_control
    )


# family

FAMILY_DELETE = """
mutation Delete($accountId: ID!) {
  familyDelete(input: {accountId: $accountId}) { accountId errors { code field } }
}"""
FAMILY_LEAVE = """
mutation Leave($accountId: ID!) {
  familyLeave(input: {accountId: $accountId}) { accountId errors { code field } }
}"""
FAMILY_MEMBER_ADD = """
mutation Add($accountId: ID!, $phone: String!) {
  familyMemberAdd(input: {accountId: $accountId, phone: $phone}) {
    account { id members { id phone } } member { id phone } errors { code field }
  }
}"""
FAMILY_MEMBER_REMOVE = """
mutation Remove($accountId: ID!, $memberId: ID!) {
  familyMemberRemove(input: {accountId: $accountId, memberId: $memberId}) {
    account { id members { id phone } } errors { code field }
  }
}"""
FAMILY_LIMIT_SET = """
mutation Limit($accountId: ID!, $memberId: ID!, $limit: FamilyLimitInput) {
  familyMemberLimitSet(input: {accountId: $accountId, memberId: $memberId, limit: $limit}) {
    account { id members { id limit { amount { amountMinor } } } } errors { code field }
  }
}"""
FAMILY_CARDS_SET = """
mutation Cards($accountId: ID!, $cardIds: [String!]!) {
  familyPaymentMethodSet(input: {accountId: $accountId, cardIds: $cardIds}) {
    account { id paymentMethods { id } mainPaymentMethodId } errors { code field }
  }
}"""
FAMILY_MARK = """
mutation Mark($ids: [ID!]!) {
  familyNotificationsMarkSeen(input: {ids: $ids}) { marked errors { code field } }
}"""
FAMILY_ACCEPT = """
mutation Accept($accountId: ID!) {
  familyInvitationAccept(input: {accountId: $accountId}) {
    account { id members { id phone } } errors { code field }
  }
}"""
FAMILY_DECLINE = """
mutation Decline($accountId: ID!) {
  familyInvitationDecline(input: {accountId: $accountId}) { accountId errors { code field } }
}"""
FAMILY_NODE = """
query Family($id: ID!) { node(id: $id) { id ... on FamilyAccount { members { id phone } } } }"""
VICTIM_LIMIT = {"amountMinor": 10_000, "currency": "RUB", "frame": "MONTH"}


def _account_gid(victim: Victim) -> str:
    return gid("FamilyAccount", victim.family)


def _member_gid(victim: Victim) -> str:
    return gid("FamilyMember", victim.family_member)


async def _own_family(world: World) -> dict[str, Any]:
    """The attacker's own family (made once per world): the try names it as `accountId`."""
    if world.attacker_family is None:
        async with world.runtime.session_factory() as session, session.begin():
            world.attacker_family = await family_accounts.create_family(
                session, world.attacker.id, name="the attacker's", color="FF0000", now=utcnow()
            )
    return {"accountId": gid("FamilyAccount", world.attacker_family)}


async def _family_delete_control(world: World) -> None:
    variables = {"accountId": _account_gid(world.victim)}
    body = await world.call(FAMILY_DELETE, variables, world.victim.token)
    assert _payload(body, "familyDelete") == {**variables, "errors": []}, body
    async with world.runtime.session_factory() as session:
        assert await session.get(FamilyAccount, world.victim.family) is None


async def _family_leave_control(world: World) -> None:
    variables = {"accountId": _account_gid(world.victim)}
    body = await world.call(FAMILY_LEAVE, variables, world.victim.member_token)
    assert _payload(body, "familyLeave") == {**variables, "errors": []}, body


async def _member_add_control(world: World) -> None:
    newcomer = await families.person(world.runtime)
    variables = {"accountId": _account_gid(world.victim), "phone": newcomer.phone}
    body = await world.call(FAMILY_MEMBER_ADD, variables, world.victim.token)
    payload = _payload(body, "familyMemberAdd")
    assert payload["errors"] == [] and payload["member"]["phone"] == newcomer.phone, body


async def _member_phone_control(world: World) -> None:
    """The phone is the victim's member's: the owner adding it again is ALREADY_MEMBER."""
    variables = {"accountId": _account_gid(world.victim), "phone": world.victim.member_phone}
    body = await world.call(FAMILY_MEMBER_ADD, variables, world.victim.token)
    assert _codes(_payload(body, "familyMemberAdd")) == ["ALREADY_MEMBER"], body


async def _member_listed_control(world: World) -> None:
    body = await world.call(FAMILY_NODE, {"id": _account_gid(world.victim)}, world.victim.token)
    members = _payload(body, "node")["members"]
    assert {"id": _member_gid(world.victim), "phone": world.victim.member_phone} in members, body


async def _member_remove_control(world: World) -> None:
    variables = {"accountId": _account_gid(world.victim), "memberId": _member_gid(world.victim)}
    body = await world.call(FAMILY_MEMBER_REMOVE, variables, world.victim.token)
    payload = _payload(body, "familyMemberRemove")
    assert payload["errors"] == [], body
    assert [m["id"] for m in payload["account"]["members"]] != [], body
    assert _member_gid(world.victim) not in json.dumps(payload["account"]), body


async def _limit_set_control(world: World) -> None:
    victim = world.victim
    variables = {
        "accountId": _account_gid(victim),
        "memberId": _member_gid(victim),
        "limit": VICTIM_LIMIT,
    }
    body = await world.call(FAMILY_LIMIT_SET, variables, victim.token)
    payload = _payload(body, "familyMemberLimitSet")
    assert payload["errors"] == [], body
    assert {"id": _member_gid(victim), "limit": {"amount": {"amountMinor": 10_000}}} in payload[
        "account"
    ]["members"], body


async def _cards_set_control(world: World) -> None:
    victim = world.victim
    variables = {"accountId": _account_gid(victim), "cardIds": [victim.card]}
    body = await world.call(FAMILY_CARDS_SET, variables, victim.token)
    assert _payload(body, "familyPaymentMethodSet") == {
        "account": {
            "id": _account_gid(victim),
            "paymentMethods": [{"id": victim.card}],
            "mainPaymentMethodId": victim.card,
        },
        "errors": [],
    }, body


async def _family_notifications_control(world: World) -> None:
    ids = [gid("FamilyNotification", n) for n in world.victim.family_notifications]
    body = await world.call(FAMILY_MARK, {"ids": ids}, world.victim.token)
    assert _payload(body, "familyNotificationsMarkSeen") == {"marked": 1, "errors": []}


async def _invitation_control(world: World, document: str, field: str) -> None:
    """The victim invites a newcomer, whose answer (with the same id) is taken."""
    newcomer = await families.person(world.runtime)
    variables = {"accountId": _account_gid(world.victim), "phone": newcomer.phone}
    invited = await world.call(FAMILY_MEMBER_ADD, variables, world.victim.token)
    assert _payload(invited, "familyMemberAdd")["errors"] == [], invited
    token = await access_token(world.runtime, newcomer)
    body = await world.call(document, {"accountId": _account_gid(world.victim)}, token)
    assert _payload(body, field)["errors"] == [], body


async def _accept_control(world: World) -> None:
    await _invitation_control(world, FAMILY_ACCEPT, "familyInvitationAccept")


async def _decline_control(world: World) -> None:
    await _invitation_control(world, FAMILY_DECLINE, "familyInvitationDecline")


async def _attacker_phone(world: World) -> dict[str, Any]:
    assert world.attacker.phone is not None
    return {"phone": world.attacker.phone}


def _member_variables(victim: Victim) -> dict[str, Any]:
    return {"accountId": _account_gid(victim), "memberId": _member_gid(victim)}


def _limit_variables(victim: Victim) -> dict[str, Any]:
    limit = {"amountMinor": 1, "currency": "RUB", "frame": "DAY"}
    return _member_variables(victim) | {"limit": limit}


FAMILY_CASES: dict[tuple[str, str], Case] = {
    ("Mutation.familyDelete", "FamilyAccount"): Case(
        FAMILY_DELETE, lambda v: {"accountId": _account_gid(v)}, _family_delete_control
    ),
    ("Mutation.familyLeave", "FamilyAccount"): Case(
        FAMILY_LEAVE, lambda v: {"accountId": _account_gid(v)}, _family_leave_control
    ),
    # the attacker adds themselves (by their own phone) to the victim's family
    ("Mutation.familyMemberAdd", "FamilyAccount"): Case(
        FAMILY_MEMBER_ADD,
        lambda v: {"accountId": _account_gid(v)},
        _member_add_control,
        setup=_attacker_phone,
    ),
    # ... and the victim's member (by their phone) to their own
    ("Mutation.familyMemberAdd", "FamilyMember in own family"): Case(
        FAMILY_MEMBER_ADD,
        lambda v: {"accountId": _account_gid(v), "phone": v.member_phone},
        _member_phone_control,
        setup=_own_family,
    ),
    ("Mutation.familyMemberRemove", "FamilyMember in own family"): Case(
        FAMILY_MEMBER_REMOVE, _member_variables, _member_listed_control, setup=_own_family
    ),
    ("Mutation.familyMemberRemove", "FamilyMember"): Case(
        FAMILY_MEMBER_REMOVE, _member_variables, _member_remove_control
    ),
    ("Mutation.familyMemberLimitSet", "FamilyMember"): Case(
        FAMILY_LIMIT_SET, _limit_variables, _limit_set_control
    ),
    ("Mutation.familyMemberLimitSet", "FamilyMember in own family"): Case(
        FAMILY_LIMIT_SET, _limit_variables, _limit_set_control, setup=_own_family
    ),
    ("Mutation.familyPaymentMethodSet", "FamilyAccount"): Case(
        FAMILY_CARDS_SET,
        lambda v: {"accountId": _account_gid(v), "cardIds": [v.card]},
        _cards_set_control,
    ),
    # the attacker shares the victim's card with their own family
    ("Mutation.familyPaymentMethodSet", "PaymentCard in own family"): Case(
        FAMILY_CARDS_SET,
        lambda v: {"accountId": _account_gid(v), "cardIds": [v.card]},
        _cards_set_control,
        setup=_own_family,
    ),
    # the attacker, invited by nobody, answers for the victim's family
    ("Mutation.familyInvitationAccept", "FamilyAccount"): Case(
        FAMILY_ACCEPT, lambda v: {"accountId": _account_gid(v)}, _accept_control
    ),
    ("Mutation.familyInvitationDecline", "FamilyAccount"): Case(
        FAMILY_DECLINE, lambda v: {"accountId": _account_gid(v)}, _decline_control
    ),
    ("Mutation.familyNotificationsMarkSeen", "FamilyNotification"): Case(
        FAMILY_MARK,
        lambda v: {"ids": [gid("FamilyNotification", n) for n in v.family_notifications]},
        _family_notifications_control,
    ),
}


CASES: dict[tuple[str, str], Case] = {
    **{("Query.node", t): _node_case(t) for t in OWNED["Query.node"].tries},
    **{("Query.viewer", o): _viewer_case(o) for o in OWNED["Query.viewer"].tries},
    **{
        ("Query.launch", o): Case(LAUNCH, lambda v: {}, _launch_control, _launch_expect)
        for o in OWNED["Query.launch"].tries
    },
    ("Mutation.promotionStart", "PromotionRun"): _promotion_case(PROMOTION_START),
    ("Mutation.promotionReward", "PromotionRun"): _promotion_case(PROMOTION_REWARD),
    ("Mutation.promotionRewardAccept", "PromotionRun"): _promotion_case(PROMOTION_ACCEPT),
    ("Mutation.register", "email"): Case(
        REGISTER,
        lambda v: {"input": {"email": v.email.upper(), "password": "an-attackers-passphrase"}},
        None,  # the victim registered with it: that is the control
    ),
    ("Mutation.login", "email"): Case(
        LOGIN,
        lambda v: {"input": {"login": v.email, "password": "an-attackers-guess"}},
        _login_control,
    ),
    ("Mutation.logout", "refresh token"): Case(
        LOGOUT, lambda v: {"token": v.refresh_token}, _logout_control
    ),
    ("Mutation.accountDelete", "password"): Case(
        ACCOUNT_DELETE, lambda v: {"password": VICTIM_PASSWORD}, _account_delete_control
    ),
    ("Mutation.goalNotificationsMarkSeen", "GoalNotification"): Case(
        MARK_NOTIFICATIONS,
        lambda v: {"ids": [gid("GoalNotification", n) for n in v.notifications]},
        _notifications_control,
    ),
    ("Mutation.achievementsMarkSeen", "UserGoal"): Case(
        MARK_ACHIEVEMENTS,
        lambda v: {"ids": [gid("UserGoal", g) for g in (v.done_goal.id, v.active_goal.id)]},
        _achievements_control,
    ),
    **{
        ("Mutation.promocodeQuote", o): _quote_case(o)
        for o in OWNED["Mutation.promocodeQuote"].tries
    },
    **{
        ("Mutation.purchaseCreate", o): _purchase_case(o)
        for o in OWNED["Mutation.purchaseCreate"].tries
    },
    **FAMILY_CASES,
}


# ---- the checks ---------------------------------------------------------------------------


def _assert_outcome(name: str, obj: str, outcome: Outcome, body: dict[str, Any]) -> None:
    field = name.split(".")[1]
    assert "errors" not in body, (name, obj, body)
    value = body["data"][field]
    if outcome is Outcome.NULL:
        assert value is None, (name, obj, body)
    elif outcome is Outcome.IGNORED:
        assert value["errors"] == [], (name, obj, body)
        assert value.get("marked", 0) == 0 and not value.get("hasUnseenAchievements"), body
    elif outcome is Outcome.OWN_ONLY:
        assert value is not None, (name, obj, body)
    else:  # a payload error, and nothing else in the payload
        assert _codes(value) == [outcome.name], (name, obj, body)
        assert not any(v for k, v in value.items() if k != "errors"), (name, obj, body)


def _assert_nothing_shown(name: str, obj: str, victim: Victim, body: dict[str, Any]) -> None:
    text = json.dumps(body)
    shown = sorted(marker for marker in victim.all_markers() if marker in text)
    assert not shown, (name, obj, shown, body)


def _assert_nothing_changed(
    name: str, obj: str, before: Snapshot, after: Snapshot, writes: frozenset[str], attacker: User
) -> None:
    """No row of anyone changed; new rows only where declared, and only the attacker's."""
    for table, change in changes(before, after).items():
        assert table in writes and not change.removed, (name, obj, table, change)
        for row in change.added:
            owner = dict(row).get("user_id", "").replace("-", "")
            assert attacker.id.hex in owner, (name, obj, table, row)


@pytest.mark.parametrize("name", sorted(name for name, owned in OWNED.items() if owned.tries))
async def test_another_user_gets_nothing_of_the_victims(
    name: str, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    world = await create_world(runtime, client)
    owned = OWNED[name]
    for obj, outcome in owned.tries.items():
        case = CASES[name, obj]
        variables = case.variables(world.victim)
        if case.setup is not None:
            variables |= await case.setup(world)
        before = await table_rows(runtime)
        body = await world.call(case.document, variables, world.attacker_token)
        _assert_outcome(name, obj, outcome, body)
        if case.expect is not None:
            case.expect(world, body)
        _assert_nothing_shown(name, obj, world.victim, body)
        after = await table_rows(runtime)
        _assert_nothing_changed(name, obj, before, after, owned.writes, world.attacker)
        if case.control is not None:
            await case.control(world)


# ---- the declaration against the schema -------------------------------------------------------


def _root_fields(schema: GraphQLSchema) -> dict[str, GraphQLField]:
    roots = (schema.query_type, schema.mutation_type, schema.subscription_type)
    return {f"{r.name}.{n}": f for r in roots if r for n, f in r.fields.items()}


def _leaves(type_: GraphQLInputType, path: str) -> list[tuple[str, GraphQLInputType]]:
    """The leaf arguments and input fields under `type_`, as (dotted path, type)."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLInputObjectType):
        return [
            leaf
            for name, input_field in named.fields.items()
            for leaf in _leaves(input_field.type, f"{path}.{name}")
        ]
    return [(path, type_)]


def _id_leaves(field: GraphQLField) -> list[str]:
    return [
        path
        for arg_name, arg in field.args.items()
        for path, type_ in _leaves(arg.type, arg_name)
        if get_named_type(type_).name in ID_SCALARS
    ]


def _user_fields() -> dict[str, GraphQLField]:
    return {
        name: field
        for name, field in _root_fields(_schema()).items()
        if name.startswith("Subscription.") or ACCESS[name] in USER_FIELDS
    }


def test_every_user_field_is_declared() -> None:
    """Every root field a user may call (and every subscription) says how it refers to
    users' objects; nothing else is declared."""
    assert set(OWNED) == set(_user_fields())


def test_fields_taking_ids_are_tried_with_the_victims_objects() -> None:
    for name, field in _user_fields().items():
        owned = OWNED[name]
        if _id_leaves(field):
            assert owned.refers not in (Refers.NOTHING, Refers.CALLER), (name, _id_leaves(field))
        if owned.refers in (Refers.IDS, Refers.SECRET) or _id_leaves(field):
            assert owned.tries, f"{name}: name the victim's objects it is tried with"
        if owned.refers in (Refers.NOTHING, Refers.CREDENTIAL) and not owned.tries:
            assert owned.why, f"{name}: say why there is nothing to try"


def test_every_try_has_a_case() -> None:
    declared = {(name, obj) for name, owned in OWNED.items() for obj in owned.tries}
    assert set(CASES) == declared
    # Subscriptions run over WebSocket: a subscription with ids needs a case of its own here.
    assert not any(name.startswith("Subscription.") for name, _ in declared)


def test_every_user_owned_node_type_is_tried() -> None:
    owned_types = {
        name
        for name, case in NODE_TYPES.items()
        if case.seen in (Seen.OWNER, Seen.OWNER_OR_SERVICE)
    }
    assert owned_types <= set(OWNED["Query.node"].tries)


# ---- ADMIN and SERVICE fields: refused before any id is read ---------------------------------

# The victim's value for each id-like argument or input field name of ADMIN and SERVICE fields.
VICTIM_LEAVES: dict[str, Callable[[Victim], str]] = {
    "userId": lambda v: gid("User", v.user.id),
    "userIds": lambda v: gid("User", v.user.id),
    "groupId": lambda v: gid("Group", v.group.id),
    "groupIds": lambda v: gid("Group", v.group.id),
    "purchaseId": lambda v: gid("Purchase", v.purchase),
    "promocodeId": lambda v: gid("Promocode", v.personal_code.id),
    "orderId": lambda v: v.order_id,
    "accountId": lambda v: gid("FamilyAccount", v.family),
    "cardId": lambda v: v.card,  # the card store's id (a String)
    "Mutation.familyMigrationBulk.input.after": lambda v: gid("FamilyAccount", v.family),
    "Query.promocode.id": lambda v: gid("Promocode", v.personal_code.id),
}
# Id-typed arguments of ADMIN and SERVICE fields that name nothing a user owns.
NOT_USER_OWNED = {
    "planId",
    "planIds",
    "promotionId",  # promotions are shared; a user's run is named by (user, promotion)
    "Query.jobPing.id",
    "Mutation.jobRetry.input.id",
    "Mutation.promotionUpdate.input.id",
    "emailId",  # the notifier's emails go to corporate clients, never to a user
}


def _victim_leaf(name: str, path: str) -> Callable[[Victim], str] | None:
    return VICTIM_LEAVES.get(f"{name}.{path}") or VICTIM_LEAVES.get(path.rsplit(".", 1)[-1])


def _fill(name: str, path: str, type_: GraphQLInputType, required: bool, victim: Victim) -> Any:
    """A value for `type_` with the victim's value in every id-like leaf and samples in the
    other required ones; Undefined when it is optional and holds no victim value."""
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if (value := _victim_leaf(name, path)) is not None:
        return [value(victim)] if isinstance(inner, GraphQLList) else value(victim)
    if isinstance(inner, GraphQLList) and isinstance(
        get_named_type(inner), GraphQLInputObjectType
    ):  # a list of input objects (orderRecordBatch's orders): one filled item
        item = _fill(name, path, inner.of_type, required, victim)
        return Undefined if item is Undefined else [item]
    if isinstance(inner, GraphQLInputObjectType):
        filled = {}
        for field_name, input_field in inner.fields.items():
            must = isinstance(input_field.type, GraphQLNonNull) and (
                input_field.default_value is Undefined
            )
            value = _fill(name, f"{path}.{field_name}", input_field.type, must, victim)
            if value is not Undefined:
                filled[field_name] = value
        return filled if filled or required else Undefined
    return _sample(type_) if required else Undefined


def _role_operation(name: str, field: GraphQLField, victim: Victim) -> tuple[str, dict[str, Any]]:
    root, field_name = name.split(".")
    variables = {}
    declarations = []
    for arg_name, arg in field.args.items():
        required = isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
        value = _fill(name, arg_name, arg.type, required, victim)
        if value is not Undefined:
            variables[arg_name] = value
            declarations.append(f"${arg_name}: {arg.type}")
    arguments = ", ".join(f"{a}: ${a}" for a in variables)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    keyword = "query" if root == "Query" else "mutation"
    header = f"{keyword} Call({', '.join(declarations)})" if declarations else keyword
    call = f"{field_name}({arguments})" if arguments else field_name
    return f"{header} {{ {call}{selection} }}", variables


def _role_fields() -> dict[str, GraphQLField]:
    return {
        name: field
        for name, field in _root_fields(_schema()).items()
        if not name.startswith("Subscription.") and ACCESS[name] not in USER_FIELDS
    }


def _takes_victim_values(name: str, field: GraphQLField) -> bool:
    return any(
        _victim_leaf(name, path) is not None
        for arg_name, arg in field.args.items()
        for path, _ in _leaves(arg.type, arg_name)
    )


def test_every_id_of_admin_and_service_fields_is_mapped() -> None:
    """An ADMIN or SERVICE field with a new id argument fails here until the argument gets
    the victim's value in `VICTIM_LEAVES` (or is declared NOT_USER_OWNED)."""
    unmapped = [
        f"{name}.{path}"
        for name, field in _role_fields().items()
        for path in _id_leaves(field)
        if _victim_leaf(name, path) is None
        and path.rsplit(".", 1)[-1] not in NOT_USER_OWNED
        and f"{name}.{path}" not in NOT_USER_OWNED
    ]
    assert unmapped == []


@pytest.mark.parametrize(
    "name",
    sorted(name for name, field in _role_fields().items() if _takes_victim_values(name, field)),
)
async def test_a_user_is_refused_admin_and_service_fields_on_real_ids(
    name: str, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    world = await create_world(runtime, client)
    document, variables = _role_operation(name, _role_fields()[name], world.victim)
    assert any(marker in json.dumps(variables) for marker in world.victim.all_markers()), variables
    before = await table_rows(runtime)
    body = await world.call(document, variables, world.attacker_token)
    assert error_codes(body) == ["FORBIDDEN"], (name, body)
    assert not any((body.get("data") or {}).values()), (name, body)
    _assert_nothing_shown(name, "ids", world.victim, body)
    assert changes(before, await table_rows(runtime)) == {}, name
    # The same call from a service, for the service's own fields, does reach the victim's
    # objects: the ids are real (a SERVICE field refuses an admin, so only services here).
    if ACCESS[name] is Access.SERVICE:
        allowed = await world.call(document, variables, await service_token(runtime))
        assert "FORBIDDEN" not in error_codes(allowed), (name, allowed)
