"""Promocode resolvers, admin side: mutations for plans, codes (create, update, deactivate,
bulk generate), grants and admin-apply. Queries are in `admin_queries.py`.

Every resolver requires the ADMIN role; refusals come back as `PromocodeError`s, and a refused
request writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.promocodes import batches, codes, grants, issuing
from app.services.promocodes.errors import PromocodeErrorCode
from schema.context import Context
from schema.errors import payload_errors
from schema.ids import node_uuid
from schema.permissions import require
from schema.promocodes.admin import PromocodeNode
from schema.promocodes.admin_inputs import (
    GENERATE_SAMPLE_SIZE,
    PlanCreateInput,
    PlanCreatePayload,
    PromocodeApplyInput,
    PromocodeApplyOutcome,
    PromocodeApplyPayload,
    PromocodeCreateInput,
    PromocodeDeactivateInput,
    PromocodeGenerateInput,
    PromocodeGeneratePayload,
    PromocodeGrantInput,
    PromocodeGrantOutcome,
    PromocodeGrantPayload,
    PromocodeOfferInput,
    PromocodePayload,
    PromocodeRevokeGrantPayload,
    PromocodeUpdateInput,
)
from schema.promocodes.errors import PromocodeError
from schema.promocodes.types import PlanNode, PurchaseNode

Code = PromocodeErrorCode
InfoT = Info[Context, Any]


def promocode_errors(exc: DomainError) -> list[PromocodeError]:
    return payload_errors(PromocodeError, exc)


def _node_uuids(
    values: Sequence[strawberry.ID], type_name: str, field: str, code: Code
) -> list[uuid.UUID]:
    return [node_uuid(value, type_name, field, code) for value in values]


# ---- mutations: plans and codes -------------------------------------------------------------


async def _plan_create(info: InfoT, data: PlanCreateInput) -> PlanCreatePayload:
    principal = await require(info, Role.ADMIN)
    try:
        plan = await codes.create_plan(
            info.context.session,
            data.slug,
            data.name,
            data.price_minor,
            data.currency,
            data.duration_days,
            actor=principal.key,
            reason=data.reason,
        )
    except DomainError as exc:
        return PlanCreatePayload(errors=promocode_errors(exc))
    return PlanCreatePayload(plan=PlanNode.from_model(plan), errors=[])


def _offer(data: PromocodeOfferInput, code: str, max_uses: int | None) -> codes.PromocodeInput:
    return codes.PromocodeInput(
        code=code,
        kind=data.kind,
        value=data.value,
        currency=data.currency,
        description=data.description,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        max_uses=max_uses,
        max_uses_per_user=data.max_uses_per_user,
        plan_ids=_node_uuids(data.plan_ids, "Plan", "planIds", Code.UNKNOWN_PLAN),
        audience=data.audience,
        eligibility=data.eligibility,
        trial_days=data.trial_days,
        discounted_cycles=data.discounted_cycles,
    )


async def _promocode_create(info: InfoT, data: PromocodeCreateInput) -> PromocodePayload:
    principal = await require(info, Role.ADMIN)
    try:
        created = await codes.create_promocode(
            info.context.session,
            _offer(data, data.code, data.max_uses),
            actor=principal.key,
            reason=data.reason,
        )
    except DomainError as exc:
        return PromocodePayload(errors=promocode_errors(exc))
    return PromocodePayload(promocode=PromocodeNode.from_model(created), errors=[])


def _change(value: Any, *, nullable: bool) -> Any:
    """An update field: omitted (or null where null means nothing) leaves it as it is."""
    if value is strawberry.UNSET or (value is None and not nullable):
        return codes.UNSET
    return value


def _changes(data: PromocodeUpdateInput) -> codes.PromocodeUpdate:
    plan_ids = _change(data.plan_ids, nullable=False)
    if plan_ids is not codes.UNSET:
        plan_ids = _node_uuids(plan_ids, "Plan", "planIds", Code.UNKNOWN_PLAN)
    return codes.PromocodeUpdate(
        description=_change(data.description, nullable=False),
        valid_from=_change(data.valid_from, nullable=True),
        valid_until=_change(data.valid_until, nullable=True),
        max_uses=_change(data.max_uses, nullable=True),
        max_uses_per_user=_change(data.max_uses_per_user, nullable=False),
        plan_ids=plan_ids,
        audience=_change(data.audience, nullable=False),
        eligibility=_change(data.eligibility, nullable=False),
        active=_change(data.active, nullable=False),
    )


async def _promocode_update(info: InfoT, data: PromocodeUpdateInput) -> PromocodePayload:
    principal = await require(info, Role.ADMIN)
    try:
        promocode_id = node_uuid(data.promocode_id, "Promocode", "promocodeId", Code.NOT_FOUND)
        updated = await codes.update_promocode(
            info.context.session,
            promocode_id,
            _changes(data),
            actor=principal.key,
            reason=data.reason,
        )
    except DomainError as exc:
        return PromocodePayload(errors=promocode_errors(exc))
    return PromocodePayload(promocode=PromocodeNode.from_model(updated), errors=[])


async def _promocode_deactivate(info: InfoT, data: PromocodeDeactivateInput) -> PromocodePayload:
    principal = await require(info, Role.ADMIN)
    try:
        promocode_id = node_uuid(data.promocode_id, "Promocode", "promocodeId", Code.NOT_FOUND)
        found = await codes.deactivate_promocode(
            info.context.session, promocode_id, actor=principal.key, reason=data.reason
        )
    except DomainError as exc:
        return PromocodePayload(errors=promocode_errors(exc))
    return PromocodePayload(promocode=PromocodeNode.from_model(found), errors=[])


# ---- mutations: bulk generation -------------------------------------------------------------


async def _promocode_generate(
    info: InfoT, data: PromocodeGenerateInput
) -> PromocodeGeneratePayload:
    principal = await require(info, Role.ADMIN)
    request = batches.BatchRequest(
        count=data.count, length=data.length, prefix=data.prefix, reason=data.reason
    )
    try:
        batches.check_request(request)  # the request's errors come before the offer's
        batch = await batches.generate_batch(
            info.context.session,
            request,
            _offer(data, "", data.max_uses),
            actor=principal.key,
        )
    except DomainError as exc:
        return PromocodeGeneratePayload(errors=promocode_errors(exc))
    return PromocodeGeneratePayload(
        batch_id=str(batch.batch_id),
        count=len(batch.codes),
        sample=batch.codes[:GENERATE_SAMPLE_SIZE],
        errors=[],
    )


# ---- mutations: grants and admin-apply ------------------------------------------------------


def _grantees(data: PromocodeGrantInput) -> tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]:
    promocode_id = node_uuid(data.promocode_id, "Promocode", "promocodeId", Code.NOT_FOUND)
    user_ids = _node_uuids(data.user_ids, "User", "userIds", Code.INVALID_GRANTEES)
    group_ids = _node_uuids(data.group_ids, "Group", "groupIds", Code.INVALID_GRANTEES)
    return promocode_id, user_ids, group_ids


async def _promocode_grant(info: InfoT, data: PromocodeGrantInput) -> PromocodeGrantPayload:
    principal = await require(info, Role.ADMIN)
    try:
        promocode_id, user_ids, group_ids = _grantees(data)
        result = await grants.grant_promocode(
            info.context.session,
            promocode_id,
            user_ids=user_ids,
            group_ids=group_ids,
            actor=principal.key,
            reason=data.reason,
        )
    except DomainError as exc:
        return PromocodeGrantPayload(errors=promocode_errors(exc))
    outcomes = [
        PromocodeGrantOutcome(
            grantee=outcome.grantee,
            id=strawberry.ID(
                relay.to_base64(
                    "User" if outcome.grantee is grants.Grantee.USER else "Group", outcome.id
                )
            ),
            status=outcome.status,
        )
        for outcome in result.outcomes
    ]
    return PromocodeGrantPayload(
        promocode=PromocodeNode.from_model(result.promocode),
        outcomes=outcomes,
        granted=result.granted,
        errors=[],
    )


async def _promocode_revoke(info: InfoT, data: PromocodeGrantInput) -> PromocodeRevokeGrantPayload:
    principal = await require(info, Role.ADMIN)
    session = info.context.session
    try:
        promocode_id, user_ids, group_ids = _grantees(data)
        revoked = await grants.revoke_grant(
            session,
            promocode_id,
            user_ids=user_ids,
            group_ids=group_ids,
            actor=principal.key,
            reason=data.reason,
        )
        found = await codes.get_promocode(session, promocode_id)
    except DomainError as exc:
        return PromocodeRevokeGrantPayload(errors=promocode_errors(exc))
    return PromocodeRevokeGrantPayload(
        promocode=PromocodeNode.from_model(found), revoked=revoked, errors=[]
    )


async def _promocode_apply(info: InfoT, data: PromocodeApplyInput) -> PromocodeApplyPayload:
    principal = await require(info, Role.ADMIN)
    try:
        plan_id = node_uuid(data.plan_id, "Plan", "planId", Code.UNKNOWN_PLAN)
        user_ids = _node_uuids(data.user_ids, "User", "userIds", Code.NOT_FOUND)
        results = await issuing.apply_code(
            info.context.session,
            code=data.code,
            plan_id=plan_id,
            user_ids=user_ids,
            actor=principal.key,
            reason=data.reason,
            settings=info.context.settings,
        )
    except DomainError as exc:
        return PromocodeApplyPayload(errors=promocode_errors(exc))
    outcomes = [
        PromocodeApplyOutcome(
            user_id=strawberry.ID(relay.to_base64("User", result.user_id)),
            status=result.status,
            purchase=PurchaseNode.from_model(result.purchase) if result.purchase else None,
            rejection=result.rejection,
        )
        for result in results
    ]
    applied = issuing.count_applied(results)
    return PromocodeApplyPayload(outcomes=outcomes, applied=applied, errors=[])


@strawberry.type
class PromocodeAdminMutation:
    @strawberry.mutation(description="Create a subscription plan (admin; audited).")
    async def plan_create(self, info: InfoT, input: PlanCreateInput) -> PlanCreatePayload:
        return await _plan_create(info, input)

    @strawberry.mutation(description="Create a promocode (admin; audited).")
    async def promocode_create(self, info: InfoT, input: PromocodeCreateInput) -> PromocodePayload:
        return await _promocode_create(info, input)

    @strawberry.mutation(
        description=(
            "Change a code's limits, window, plans, audience or active flag (admin; audited). "
            "What it gives can't change."
        )
    )
    async def promocode_update(self, info: InfoT, input: PromocodeUpdateInput) -> PromocodePayload:
        return await _promocode_update(info, input)

    @strawberry.mutation(
        description=(
            "Stop a code for new quotes and purchases; reservations already taken run their "
            "course. Idempotent (admin; audited)."
        )
    )
    async def promocode_deactivate(
        self, info: InfoT, input: PromocodeDeactivateInput
    ) -> PromocodePayload:
        return await _promocode_deactivate(info, input)

    @strawberry.mutation(
        description=(
            "Create up to 100,000 random codes with one offer, distinct from every existing "
            "code; returns the batch id and a sample (admin; audited)."
        )
    )
    async def promocode_generate(
        self, info: InfoT, input: PromocodeGenerateInput
    ) -> PromocodeGeneratePayload:
        return await _promocode_generate(info, input)

    @strawberry.mutation(
        description=(
            "Grant a GRANTED code to users and groups; reports an outcome per id. Granting "
            "twice is a no-op (admin; audited)."
        )
    )
    async def promocode_grant(
        self, info: InfoT, input: PromocodeGrantInput
    ) -> PromocodeGrantPayload:
        return await _promocode_grant(info, input)

    @strawberry.mutation(
        description="Remove grants; uses already taken stay. Idempotent (admin; audited)."
    )
    async def promocode_revoke_grant(
        self, info: InfoT, input: PromocodeGrantInput
    ) -> PromocodeRevokeGrantPayload:
        return await _promocode_revoke(info, input)

    @strawberry.mutation(
        description=(
            "Apply a code for users: a PENDING purchase each, reporting every user's outcome "
            "with the true rejection reason; partial success when the code runs out (admin; "
            "audited)."
        )
    )
    async def promocode_apply(
        self, info: InfoT, input: PromocodeApplyInput
    ) -> PromocodeApplyPayload:
        return await _promocode_apply(info, input)
