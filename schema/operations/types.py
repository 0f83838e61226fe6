"""Operations: the job system's admin surface (dead letters, their replay, the ping canary)
and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.identity import AuditLog
from app.models.operations import JobFailure, JobFailureStatus, JobPing
from schema.context import Context
from schema.operations.loaders import (
    AuditLogEntryByIdLoader,
    JobFailureByIdLoader,
    JobPingByIdLoader,
)
from schema.permissions import visible_nodes

strawberry.enum(
    JobFailureStatus,
    name="JobFailureStatus",
    description=(
        "DEAD: the job exhausted its retries and waits for an operator. RETRIED: an operator "
        "sent it again as a new job (a new failure is recorded if that one fails too)."
    ),
)


def _str_or_none(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


@strawberry.type(
    name="JobFailure",
    description=(
        "A dead letter: a background job that failed after all its retries, with what it was "
        "called with and why it failed (admin)."
    ),
)
class JobFailureNode(relay.Node):
    id: relay.NodeID[str]
    message_id: str = strawberry.field(
        description="The failed message's id (a UUID): the same on every delivery of that job."
    )
    actor: str = strawberry.field(description="The actor that ran the job, e.g. `system.ping`.")
    queue: str = strawberry.field(description="The queue the job was delivered on.")
    kwargs: JSON = strawberry.field(description="The keyword arguments the job was called with.")
    error: str = strawberry.field(description="The last error, as `Type: message`.")
    traceback: str = strawberry.field(description="The last error's traceback (its tail).")
    retries: int = strawberry.field(description="How many times the job was retried.")
    request_id: str | None = strawberry.field(
        description="The id of the API request that enqueued the job, for log correlation."
    )
    status: JobFailureStatus = strawberry.field(description="Whether it was retried yet.")
    failed_at: datetime = strawberry.field(description="When the job was given up on.")
    retried_at: datetime | None = strawberry.field(
        description="When an operator retried it; null while DEAD."
    )
    retried_by: str | None = strawberry.field(
        description="Who retried it (`user:<id>` or `service:<name>`); null while DEAD."
    )
    retry_message_id: str | None = strawberry.field(
        description="The message id (a UUID) of the job the retry sent; null while DEAD."
    )

    @classmethod
    def from_model(cls, failure: JobFailure) -> JobFailureNode:
        return cls(
            id=str(failure.id),
            message_id=str(failure.message_id),
            actor=failure.actor,
            queue=failure.queue,
            kwargs=JSON(failure.kwargs),
            error=failure.error,
            traceback=failure.traceback,
            retries=failure.retries,
            request_id=failure.request_id,
            status=failure.status,
            failed_at=failure.failed_at,
            retried_at=failure.retried_at,
            retried_by=failure.retried_by,
            retry_message_id=_str_or_none(failure.retry_message_id),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[JobFailureNode | None]:
        """Admins only."""
        return await visible_nodes(info, JobFailureByIdLoader, node_ids, cls.from_model)


@strawberry.type(
    name="JobPing",
    description=(
        "A canary job an operator sent through the whole pipeline (outbox, broker, worker): "
        "`processedAt` set and `deliveries` = 1 show the pipeline works (admin)."
    ),
)
class JobPingNode(relay.Node):
    id: relay.NodeID[str]
    note: str = strawberry.field(description="The operator's note, to recognise the ping.")
    requested_by: str = strawberry.field(
        description="Who sent it (`user:<id>` or `service:<name>`)."
    )
    message_id: str | None = strawberry.field(
        description="The id (a UUID) of the job message that carries the ping."
    )
    created_at: datetime = strawberry.field(description="When the ping was requested.")
    processed_at: datetime | None = strawberry.field(
        description="When a worker first applied it; null until then."
    )
    deliveries: int = strawberry.field(
        description="How many times its effect was applied: never more than 1."
    )

    @classmethod
    def from_model(cls, ping: JobPing) -> JobPingNode:
        return cls(
            id=str(ping.id),
            note=ping.note,
            requested_by=ping.requested_by,
            message_id=_str_or_none(ping.message_id),
            created_at=ping.created_at,
            processed_at=ping.processed_at,
            deliveries=ping.deliveries,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[JobPingNode | None]:
        """Admins only."""
        return await visible_nodes(info, JobPingByIdLoader, node_ids, cls.from_model)


@strawberry.type(
    name="AuditLogEntry",
    description=(
        "What an admin or a service did, to what, when and why: written with the action's "
        "effect, never changed (admin)."
    ),
)
class AuditLogEntryNode(relay.Node):
    id: relay.NodeID[str]
    actor: str = strawberry.field(
        description="Who did it: `user:<uuid>` (an admin) or `service:<name>` (a service token)."
    )
    action: str = strawberry.field(
        description="What was done, a dotted verb such as `user.block` or `promocode.apply`."
    )
    target: str = strawberry.field(
        description=(
            "What it was done to, as `<kind>:<key>` with the key of the object's global id "
            "(a UUID; a goal template's slug), e.g. `user:6f1d7a57-…` or `promocode:…`."
        )
    )
    reason: str = strawberry.field(description="Why, as the actor gave it; may be empty.")
    created_at: datetime = strawberry.field(description="When it was done.")

    @classmethod
    def from_model(cls, entry: AuditLog) -> AuditLogEntryNode:
        return cls(
            id=str(entry.id),
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            reason=entry.reason,
            created_at=entry.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[AuditLogEntryNode | None]:
        """Admins only."""
        return await visible_nodes(info, AuditLogEntryByIdLoader, node_ids, cls.from_model)
