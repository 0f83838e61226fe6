"""Family accounts, client side: create and delete, invitations and members, limits, cards,
notifications.

Every mutation is the caller's own: `input → require(USER) → service → payload`. A family the
caller isn't in is NOT_FOUND; a member who isn't the owner gets NOT_OWNER for the owner's
acts. The family in the payload is read after the change, as the caller may see it.
"""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.base import utcnow
from app.models.identity import Role
from app.services.errors import DomainError
from app.services.family import accounts, cards, members, notifications, reading
from app.services.family.codes import FamilyErrorCode
from app.services.family.members import LimitSpec
from schema.base import decode_global_id
from schema.context import Context
from schema.errors import payload_errors
from schema.family.errors import FamilyError
from schema.family.inputs import (
    FamilyAccountInput,
    FamilyAccountPayload,
    FamilyCreateInput,
    FamilyGonePayload,
    FamilyLimitInput,
    FamilyMemberAddInput,
    FamilyMemberAddPayload,
    FamilyMemberInput,
    FamilyMemberLimitSetInput,
    FamilyNotificationsMarkSeenInput,
    FamilyNotificationsMarkSeenPayload,
    FamilyPaymentMethodSetInput,
)
from schema.family.types import FamilyAccountNode, FamilyMember
from schema.ids import node_uuid
from schema.permissions import require

InfoT = Info[Context, Any]


async def user_id_of(info: InfoT) -> uuid.UUID:
    principal = await require(info, Role.USER)
    assert principal.user_id is not None
    return principal.user_id


def _account(value: strawberry.ID) -> uuid.UUID:
    return node_uuid(value, "FamilyAccount", "accountId", FamilyErrorCode.NOT_FOUND)


def _member(value: strawberry.ID) -> uuid.UUID:
    return node_uuid(value, "FamilyMember", "memberId", FamilyErrorCode.MEMBER_NOT_FOUND)


def _limit(value: FamilyLimitInput | None) -> LimitSpec | None:
    if value is None:
        return None
    return LimitSpec(value.amount_minor, value.currency, value.frame)


async def _view(info: InfoT, account_id: uuid.UUID, user_id: uuid.UUID) -> FamilyAccountNode:
    view = await reading.family_view(
        info.context.session,
        account_id,
        viewer_id=user_id,
        passport=info.context.runtime.passport,
        now=utcnow(),
    )
    assert view is not None
    return FamilyAccountNode.from_view(view)


async def _create(info: InfoT, data: FamilyCreateInput) -> FamilyAccountPayload:
    user_id = await user_id_of(info)
    try:
        account_id = await accounts.create_family(
            info.context.session, user_id, name=data.name, color=data.color, now=utcnow()
        )
    except DomainError as exc:
        return FamilyAccountPayload(errors=payload_errors(FamilyError, exc))
    return FamilyAccountPayload(account=await _view(info, account_id, user_id), errors=[])


async def _delete(info: InfoT, data: FamilyAccountInput) -> FamilyGonePayload:
    user_id = await user_id_of(info)
    try:
        account_id = _account(data.account_id)
        await accounts.delete_family(
            info.context.session,
            account_id,
            user_id,
            passport=info.context.runtime.passport,
            now=utcnow(),
        )
    except DomainError as exc:
        return FamilyGonePayload(errors=payload_errors(FamilyError, exc))
    return FamilyGonePayload(account_id=data.account_id, errors=[])


async def _add(info: InfoT, data: FamilyMemberAddInput) -> FamilyMemberAddPayload:
    user_id = await user_id_of(info)
    try:
        account_id = _account(data.account_id)
        member_id = await members.add_member(
            info.context.session,
            account_id,
            user_id,
            phone=data.phone,
            limit=_limit(data.limit),
            passport=info.context.runtime.passport,
            now=utcnow(),
        )
    except DomainError as exc:
        return FamilyMemberAddPayload(errors=payload_errors(FamilyError, exc))
    account = await _view(info, account_id, user_id)
    added = next(
        (m for m in account.members or [] if m.id is not None and _member(m.id) == member_id),
        None,
    )
    return FamilyMemberAddPayload(account=account, member=added, errors=[])


async def _accept(info: InfoT, data: FamilyAccountInput) -> FamilyAccountPayload:
    user_id = await user_id_of(info)
    try:
        account_id = _account(data.account_id)
        await members.accept(
            info.context.session,
            account_id,
            user_id,
            passport=info.context.runtime.passport,
            now=utcnow(),
        )
    except DomainError as exc:
        return FamilyAccountPayload(errors=payload_errors(FamilyError, exc))
    return FamilyAccountPayload(account=await _view(info, account_id, user_id), errors=[])


async def _decline(info: InfoT, data: FamilyAccountInput) -> FamilyGonePayload:
    user_id = await user_id_of(info)
    try:
        await members.decline(info.context.session, _account(data.account_id), user_id)
    except DomainError as exc:
        return FamilyGonePayload(errors=payload_errors(FamilyError, exc))
    return FamilyGonePayload(account_id=data.account_id, errors=[])


async def _remove(info: InfoT, data: FamilyMemberInput) -> FamilyAccountPayload:
    user_id = await user_id_of(info)
    try:
        account_id = _account(data.account_id)
        await members.remove_member(
            info.context.session,
            account_id,
            user_id,
            _member(data.member_id),
            passport=info.context.runtime.passport,
        )
    except DomainError as exc:
        return FamilyAccountPayload(errors=payload_errors(FamilyError, exc))
    return FamilyAccountPayload(account=await _view(info, account_id, user_id), errors=[])


async def _leave(info: InfoT, data: FamilyAccountInput) -> FamilyGonePayload:
    user_id = await user_id_of(info)
    try:
        await members.leave(
            info.context.session,
            _account(data.account_id),
            user_id,
            passport=info.context.runtime.passport,
        )
    except DomainError as exc:
        return FamilyGonePayload(errors=payload_errors(FamilyError, exc))
    return FamilyGonePayload(account_id=data.account_id, errors=[])


async def _limit_set(info: InfoT, data: FamilyMemberLimitSetInput) -> FamilyAccountPayload:
    user_id = await user_id_of(info)
    try:
        account_id = _account(data.account_id)
        await members.set_limit(
            info.context.session,
            account_id,
            user_id,
            _member(data.member_id),
            _limit(data.limit),
            now=utcnow(),
        )
    except DomainError as exc:
        return FamilyAccountPayload(errors=payload_errors(FamilyError, exc))
    return FamilyAccountPayload(account=await _view(info, account_id, user_id), errors=[])


async def _cards_set(info: InfoT, data: FamilyPaymentMethodSetInput) -> FamilyAccountPayload:
    user_id = await user_id_of(info)
    try:
        account_id = _account(data.account_id)
        await cards.set_family_cards(
            info.context.session,
            account_id,
            user_id,
            data.card_ids,
            data.main_card_id,
            now=utcnow(),
        )
    except DomainError as exc:
        return FamilyAccountPayload(errors=payload_errors(FamilyError, exc))
    return FamilyAccountPayload(account=await _view(info, account_id, user_id), errors=[])


async def _mark_seen(
    info: InfoT, data: FamilyNotificationsMarkSeenInput
) -> FamilyNotificationsMarkSeenPayload:
    user_id = await user_id_of(info)
    try:
        notifications.check_count(len(data.ids))
    except DomainError as exc:
        return FamilyNotificationsMarkSeenPayload(errors=payload_errors(FamilyError, exc))
    ids = [found for found in map(_notification, data.ids) if found is not None]
    marked = await notifications.mark_seen(info.context.session, user_id, ids, now=utcnow())
    return FamilyNotificationsMarkSeenPayload(marked=marked, errors=[])


def _notification(value: strawberry.ID) -> uuid.UUID | None:
    """A FamilyNotification id; None for anything else (it names nothing of the caller's)."""
    try:
        return decode_global_id(value, "FamilyNotification")
    except ValueError:
        return None


@strawberry.type
class FamilyMutation:
    @strawberry.mutation(description="Create a family; the caller becomes its owner.")
    async def family_create(self, info: InfoT, input: FamilyCreateInput) -> FamilyAccountPayload:
        return await _create(info, input)

    @strawberry.mutation(
        description=(
            "Delete the caller's family (the owner's act; in passport first, once migrated). "
            "Refused while a member's ride holds part of a limit."
        )
    )
    async def family_delete(self, info: InfoT, input: FamilyAccountInput) -> FamilyGonePayload:
        return await _delete(info, input)

    @strawberry.mutation(
        description=(
            "Invite someone who uses the app to the owner's family, by phone; they become a "
            "member when they accept (`familyInvitationAccept`). In a migrated family their "
            "phone must have a passport account."
        )
    )
    async def family_member_add(
        self, info: InfoT, input: FamilyMemberAddInput
    ) -> FamilyMemberAddPayload:
        return await _add(info, input)

    @strawberry.mutation(
        description=(
            "Accept an invitation: the caller becomes a member (added in passport first, once "
            "the family is migrated). Refused while the caller is in another family."
        )
    )
    async def family_invitation_accept(
        self, info: InfoT, input: FamilyAccountInput
    ) -> FamilyAccountPayload:
        return await _accept(info, input)

    @strawberry.mutation(description="Turn an invitation down.")
    async def family_invitation_decline(
        self, info: InfoT, input: FamilyAccountInput
    ) -> FamilyGonePayload:
        return await _decline(info, input)

    @strawberry.mutation(
        description="Remove a member, or withdraw an invitation (the owner's act)."
    )
    async def family_member_remove(
        self, info: InfoT, input: FamilyMemberInput
    ) -> FamilyAccountPayload:
        return await _remove(info, input)

    @strawberry.mutation(description="Leave the family the caller is a member of.")
    async def family_leave(self, info: InfoT, input: FamilyAccountInput) -> FamilyGonePayload:
        return await _leave(info, input)

    @strawberry.mutation(
        description="Set or lift a member's limit (the owner's act); it applies at once."
    )
    async def family_member_limit_set(
        self, info: InfoT, input: FamilyMemberLimitSetInput
    ) -> FamilyAccountPayload:
        return await _limit_set(info, input)

    @strawberry.mutation(
        description="Share some of the owner's cards with the family (replaces the list)."
    )
    async def family_payment_method_set(
        self, info: InfoT, input: FamilyPaymentMethodSetInput
    ) -> FamilyAccountPayload:
        return await _cards_set(info, input)

    @strawberry.mutation(description="Acknowledge the caller's family notifications.")
    async def family_notifications_mark_seen(
        self, info: InfoT, input: FamilyNotificationsMarkSeenInput
    ) -> FamilyNotificationsMarkSeenPayload:
        return await _mark_seen(info, input)


__all__ = ["FamilyMember", "FamilyMutation", "user_id_of"]
