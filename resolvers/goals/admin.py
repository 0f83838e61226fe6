"""Personal goals resolvers, admin side: goal templates (create, update, archive, unarchive, list,
find).

Every resolver requires the ADMIN role; refusals come back as `GoalAdminError`s, and a refused
request writes nothing.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.goals import TemplateStatus
from app.models.identity import Role
from app.services.errors import DomainError
from app.services.goals import templates
from schema.base import After, BadUserInput, PageSize, connection_of, page_size
from schema.context import Context
from schema.errors import payload_errors
from schema.goals.admin import GoalTemplateNode
from schema.goals.errors import GoalAdminError
from schema.goals.inputs import (
    TEMPLATE_ID_DESCRIPTION,
    GoalTemplateArchiveInput,
    GoalTemplateCreateInput,
    GoalTemplatePayload,
    GoalTemplateUpdateInput,
)
from schema.permissions import IsAdmin, require

InfoT = Info[Context, Any]
NODE_TYPE = "GoalTemplate"
_CURSOR_PREFIX = "k:"


def goal_errors(exc: DomainError) -> list[GoalAdminError]:
    return payload_errors(GoalAdminError, exc)


def template_slug(value: str) -> str:
    """The slug a template argument names: a slug as is, or the one in a GoalTemplate global id.

    Slugs are lower case, so they never read as base64 of `GoalTemplate:…` (which starts `R29h`).
    """
    try:
        gid = relay.GlobalID.from_id(value)
    except relay.GlobalIDValueError:
        return value
    return gid.node_id if gid.type_name == NODE_TYPE else value


def _payload(template: Any) -> GoalTemplatePayload:
    return GoalTemplatePayload(template=GoalTemplateNode.from_model(template), errors=[])


# ---- mutations ------------------------------------------------------------------------------


async def _create(info: InfoT, data: GoalTemplateCreateInput) -> GoalTemplatePayload:
    principal = await require(info, Role.ADMIN)
    template_input = templates.TemplateInput(
        id=data.id,
        default_locale=data.default_locale,
        title=data.title,
        description=data.description,
        details=data.details,
        button_text=data.button_text,
        conditions=data.conditions,
        bonus=data.bonus,
    )
    try:
        created = await templates.create_template(
            info.context.session, template_input, actor=principal.key, reason=data.reason
        )
    except DomainError as exc:
        return GoalTemplatePayload(errors=goal_errors(exc))
    return _payload(created)


def _change(value: Any) -> Any:
    """An update field: omitted or null leaves it as it is."""
    return templates.UNSET if value is None or value is strawberry.UNSET else value


def _changes(data: GoalTemplateUpdateInput) -> templates.TemplateUpdate:
    return templates.TemplateUpdate(
        default_locale=_change(data.default_locale),
        title=_change(data.title),
        description=_change(data.description),
        details=_change(data.details),
        button_text=_change(data.button_text),
        conditions=_change(data.conditions),
        bonus=_change(data.bonus),
    )


async def _update(info: InfoT, data: GoalTemplateUpdateInput) -> GoalTemplatePayload:
    principal = await require(info, Role.ADMIN)
    try:
        updated = await templates.update_template(
            info.context.session,
            template_slug(data.id),
            _changes(data),
            actor=principal.key,
            reason=data.reason,
        )
    except DomainError as exc:
        return GoalTemplatePayload(errors=goal_errors(exc))
    return _payload(updated)


async def _set_archived(
    info: InfoT, data: GoalTemplateArchiveInput, *, archived: bool
) -> GoalTemplatePayload:
    principal = await require(info, Role.ADMIN)
    action = templates.archive_template if archived else templates.unarchive_template
    try:
        found = await action(
            info.context.session, template_slug(data.id), actor=principal.key, reason=data.reason
        )
    except DomainError as exc:
        return GoalTemplatePayload(errors=goal_errors(exc))
    return _payload(found)


@strawberry.type
class GoalAdminMutation:
    @strawberry.mutation(description="Create a goal template (admin; audited).")
    async def goal_template_create(
        self, info: InfoT, input: GoalTemplateCreateInput
    ) -> GoalTemplatePayload:
        return await _create(info, input)

    @strawberry.mutation(
        description=(
            "Change a template's texts, default locale, conditions or bonus (admin; audited "
            "when anything changes). Goals already assigned keep their conditions and bonus."
        )
    )
    async def goal_template_update(
        self, info: InfoT, input: GoalTemplateUpdateInput
    ) -> GoalTemplatePayload:
        return await _update(info, input)

    @strawberry.mutation(
        description=(
            "Stop assigning a template; goals already assigned run their course. Idempotent "
            "(admin; audited)."
        )
    )
    async def goal_template_archive(
        self, info: InfoT, input: GoalTemplateArchiveInput
    ) -> GoalTemplatePayload:
        return await _set_archived(info, input, archived=True)

    @strawberry.mutation(
        description="Make an archived template assignable again. Idempotent (admin; audited)."
    )
    async def goal_template_unarchive(
        self, info: InfoT, input: GoalTemplateArchiveInput
    ) -> GoalTemplatePayload:
        return await _set_archived(info, input, archived=False)


# ---- queries --------------------------------------------------------------------------------


def encode_cursor(slug: str) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{slug}".encode()).decode()


def decode_cursor(cursor: str | None) -> str | None:
    """The slug a keyset cursor points at (the page starts after it)."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadUserInput("Invalid cursor.", "after") from exc
    if not raw.startswith(_CURSOR_PREFIX):
        raise BadUserInput("Invalid cursor.", "after")
    return raw.removeprefix(_CURSOR_PREFIX)


@strawberry.type
class GoalAdminQuery:
    @strawberry.field(
        description="Goal templates ordered by slug (admin).", permission_classes=[IsAdmin]
    )
    async def goal_templates(
        self,
        info: InfoT,
        status: Annotated[
            TemplateStatus | None, strawberry.argument(description="Only this status.")
        ] = None,
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[GoalTemplateNode]:
        size = page_size(first, info.context.settings.max_page_size)
        start_after = decode_cursor(after)
        page = await templates.list_templates(
            info.context.session, status=status, first=size, after=start_after
        )
        return connection_of(
            [GoalTemplateNode.from_model(row) for row in page.templates],
            [encode_cursor(row.id) for row in page.templates],
            page.has_next,
            start_after is not None,
        )

    @strawberry.field(
        description="A goal template by slug (or global id); null if none (admin).",
        permission_classes=[IsAdmin],
    )
    async def goal_template(
        self,
        info: InfoT,
        id: Annotated[str, strawberry.argument(description=TEMPLATE_ID_DESCRIPTION)],
    ) -> GoalTemplateNode | None:
        [found] = await templates.templates_by_ids(info.context.session, [template_slug(id)])
        return GoalTemplateNode.from_model(found) if found is not None else None
