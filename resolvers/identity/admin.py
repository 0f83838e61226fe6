"""Identity, admin side: blocking users and managing groups (ADMIN role)."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.idempotency import IdempotencyErrorCode, run_once
from app.services.identity import groups as group_service
from app.services.identity import users as user_service
from resolvers.identity.mutations import account_errors
from schema.context import Context
from schema.errors import payload_errors
from schema.identity.errors import GroupError
from schema.identity.inputs import (
    GroupCreateInput,
    GroupDeleteInput,
    GroupDeletePayload,
    GroupMembersInput,
    GroupPayload,
    GroupUpdateInput,
    UserBlockInput,
    UserBlockPayload,
)
from schema.identity.types import GroupNode, UserNode
from schema.ids import node_uuid
from schema.permissions import require

AccountCode = user_service.AccountErrorCode
GroupCode = group_service.GroupErrorCode
InfoT = Info[Context, Any]


def group_errors(exc: DomainError) -> list[GroupError]:
    return payload_errors(GroupError, exc)


async def _set_blocked(info: InfoT, data: UserBlockInput, blocked: bool) -> UserBlockPayload:
    principal = await require(info, Role.ADMIN)
    try:
        user_id = node_uuid(data.user_id, "User", "userId", AccountCode.NOT_FOUND)
        if len(data.reason) > 500:
            raise DomainError(
                AccountCode.REASON_TOO_LONG, "Reason is limited to 500 characters.", "reason"
            )
        user = await user_service.set_blocked(
            info.context.session, principal.key, principal.user_id, user_id, blocked, data.reason
        )
    except DomainError as exc:
        return UserBlockPayload(errors=account_errors(exc))
    return UserBlockPayload(user=UserNode.from_model(user), errors=[])


def _group_idempotency_code(code: IdempotencyErrorCode) -> enum.Enum:
    return group_service.GroupErrorCode[code.name]


async def _group_create(info: InfoT, data: GroupCreateInput) -> GroupPayload:
    principal = await require(info, Role.ADMIN)
    session = info.context.session

    async def create() -> str:
        group = await group_service.create_group(
            session, principal.key, data.name, data.description
        )
        return str(group.id)

    try:
        group_id, _ = await run_once(
            session,
            principal=principal.key,
            operation="groupCreate",
            key=data.idempotency_key,
            request={"name": data.name, "description": data.description},
            create=create,
            error_code=_group_idempotency_code,
        )
        group = await group_service.get_group(session, uuid.UUID(group_id))
    except DomainError as exc:
        return GroupPayload(errors=group_errors(exc))
    return GroupPayload(group=GroupNode.from_model(group), errors=[])


async def _group_update(info: InfoT, data: GroupUpdateInput) -> GroupPayload:
    principal = await require(info, Role.ADMIN)
    try:
        group_id = node_uuid(data.group_id, "Group", "groupId", GroupCode.NOT_FOUND)
        group = await group_service.update_group(
            info.context.session, principal.key, group_id, data.name, data.description
        )
    except DomainError as exc:
        return GroupPayload(errors=group_errors(exc))
    return GroupPayload(group=GroupNode.from_model(group), errors=[])


async def _group_delete(info: InfoT, data: GroupDeleteInput) -> GroupDeletePayload:
    principal = await require(info, Role.ADMIN)
    try:
        group_id = node_uuid(data.group_id, "Group", "groupId", GroupCode.NOT_FOUND)
        await group_service.delete_group(info.context.session, principal.key, group_id)
    except DomainError as exc:
        return GroupDeletePayload(errors=group_errors(exc))
    return GroupDeletePayload(deleted_group_id=data.group_id, errors=[])


async def _group_members(info: InfoT, data: GroupMembersInput, add: bool) -> GroupPayload:
    principal = await require(info, Role.ADMIN)
    change = group_service.add_members if add else group_service.remove_members
    try:
        group_id = node_uuid(data.group_id, "Group", "groupId", GroupCode.NOT_FOUND)
        user_ids = [
            node_uuid(uid, "User", "userIds", GroupCode.USER_NOT_FOUND) for uid in data.user_ids
        ]
        group = await change(info.context.session, principal.key, group_id, user_ids)
    except DomainError as exc:
        return GroupPayload(errors=group_errors(exc))
    return GroupPayload(group=GroupNode.from_model(group), errors=[])


@strawberry.type
class IdentityAdminMutation:
    @strawberry.mutation(description="Block a user: sign-in refused, tokens stop working (admin).")
    async def user_block(self, info: InfoT, input: UserBlockInput) -> UserBlockPayload:
        return await _set_blocked(info, input, blocked=True)

    @strawberry.mutation(description="Unblock a user (admin).")
    async def user_unblock(self, info: InfoT, input: UserBlockInput) -> UserBlockPayload:
        return await _set_blocked(info, input, blocked=False)

    @strawberry.mutation(description="Create a user group (admin).")
    async def group_create(self, info: InfoT, input: GroupCreateInput) -> GroupPayload:
        return await _group_create(info, input)

    @strawberry.mutation(description="Rename or describe a user group (admin).")
    async def group_update(self, info: InfoT, input: GroupUpdateInput) -> GroupPayload:
        return await _group_update(info, input)

    @strawberry.mutation(description="Delete a user group (admin).")
    async def group_delete(self, info: InfoT, input: GroupDeleteInput) -> GroupDeletePayload:
        return await _group_delete(info, input)

    @strawberry.mutation(description="Add users to a group (admin).")
    async def group_members_add(self, info: InfoT, input: GroupMembersInput) -> GroupPayload:
        return await _group_members(info, input, add=True)

    @strawberry.mutation(description="Remove users from a group (admin).")
    async def group_members_remove(self, info: InfoT, input: GroupMembersInput) -> GroupPayload:
        return await _group_members(info, input, add=False)
