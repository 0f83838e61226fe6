"""The family domain's fields on `viewer` (the caller's family, payment methods and family
notifications) and on `launch` (the family badge). Loading payment methods or the launch
badge is the migration's trigger: an eligible owner's unmigrated family is scheduled (at
most once in flight, see `app.services.family.migration`)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from app.models.base import utcnow
from app.models.family import FamilyRole
from app.models.identity import Role
from app.services.family import migration, notifications, reading
from resolvers.family.mutations import user_id_of
from schema.context import Context
from schema.family.types import (
    FamilyAccountNode,
    FamilyInvitation,
    FamilyNotification,
    LaunchFamily,
    PaymentMethod,
    payment_methods_of,
)

InfoT = Info[Context, Any]
MAX_NOTIFICATIONS = 100


async def _trigger_migration(info: InfoT, user_id: Any) -> None:
    await migration.schedule_for_owner(
        info.context.session, user_id, settings=info.context.settings, now=utcnow()
    )


@strawberry.type
class FamilyViewer:
    @strawberry.field(
        description=(
            "The families the caller is in (one at most: a user owns or belongs to one family)."
        )
    )
    async def family_accounts(self, info: InfoT) -> list[FamilyAccountNode]:
        user_id = await user_id_of(info)
        view = await reading.family_of_viewer(
            info.context.session, user_id, passport=info.context.runtime.passport, now=utcnow()
        )
        return [] if view is None else [FamilyAccountNode.from_view(view)]

    @strawberry.field(
        description=(
            "The cards the caller may pay with: their own, then their family's shared cards "
            "with the caller's limit there."
        )
    )
    async def payment_methods(self, info: InfoT) -> list[PaymentMethod]:
        user_id = await user_id_of(info)
        found = await reading.payment_methods(info.context.session, user_id, now=utcnow())
        await _trigger_migration(info, user_id)
        return payment_methods_of(found)

    @strawberry.field(description="The families that invited the caller, newest first.")
    async def family_invitations(self, info: InfoT) -> list[FamilyInvitation]:
        user_id = await user_id_of(info)
        found = await reading.invitations_of(info.context.session, user_id)
        return [FamilyInvitation.from_view(view) for view in found]

    @strawberry.field(description="The caller's family notifications, newest first.")
    async def family_notifications(
        self, info: InfoT, unseen_only: bool = False, first: int = 20
    ) -> list[FamilyNotification]:
        user_id = await user_id_of(info)
        limit = max(0, min(first, MAX_NOTIFICATIONS))
        found = await notifications.recent(
            info.context.session, user_id, limit=limit, unseen_only=unseen_only
        )
        return [FamilyNotification.from_view(view) for view in found]


@strawberry.type
class FamilyLaunch:
    @strawberry.field(description="The caller's family, as the app start shows it; null: none.")
    async def family(self, info: InfoT) -> LaunchFamily | None:
        principal = await info.context.principal()
        if principal.user_id is None or not principal.has_role(Role.USER):
            return None
        found = await reading.launch_family(info.context.session, principal.user_id)
        if found is None:
            return None
        if found.role is FamilyRole.OWNER and not found.passport_account:
            await _trigger_migration(info, principal.user_id)
        return LaunchFamily(
            family_account_id=strawberry.ID(
                strawberry.relay.to_base64("FamilyAccount", str(found.account_id))
            ),
            member_role=found.role,
            passport_account=found.passport_account,
        )
