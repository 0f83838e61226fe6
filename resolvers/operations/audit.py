"""Operations resolvers (admin): the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.services.errors import DomainError
from app.services.operations import audit
from schema.base import After, BadUserInput, PageSize, offset_connection, offset_page
from schema.context import Context
from schema.operations.types import AuditLogEntryNode
from schema.permissions import IsAdmin

InfoT = Info[Context, Any]


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description=(
            "What admins and services did, newest first, filtered by every argument given "
            "(admin). Offset pages."
        ),
        permission_classes=[IsAdmin],
    )
    async def audit_log(
        self,
        info: InfoT,
        actor: Annotated[
            str | None,
            strawberry.argument(
                description="Only this actor's: `user:<uuid>` or `service:<name>`."
            ),
        ] = None,
        target: Annotated[
            str | None,
            strawberry.argument(description="Only entries about this target, `<kind>:<key>`."),
        ] = None,
        action: Annotated[
            str | None, strawberry.argument(description="Only this action, e.g. `user.block`.")
        ] = None,
        since: Annotated[
            datetime | None,
            strawberry.argument(name="from", description="Only entries at or after this time."),
        ] = None,
        until: Annotated[
            datetime | None, strawberry.argument(description="Only entries before this time.")
        ] = None,
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[AuditLogEntryNode]:
        page = offset_page(first, after, info.context.settings.max_page_size)
        filters = audit.AuditFilter(
            actor=actor, action=action, target=target, since=since, until=until
        )
        try:
            found = await audit.entries_page(info.context.session, page, filters)
        except DomainError as exc:
            raise BadUserInput(exc.message, exc.field or "") from exc
        nodes = [AuditLogEntryNode.from_model(entry) for entry in found.rows]
        return offset_connection(relay.Connection[AuditLogEntryNode], nodes, page, found.has_next)
