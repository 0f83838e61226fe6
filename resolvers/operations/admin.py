"""Operations resolvers (admin): dead letters and their retry, the ping canary."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role
from app.models.operations import JobFailureStatus
from app.services.errors import DomainError
from app.services.operations import jobs as job_service
from schema.base import (
    After,
    BadUserInput,
    PageSize,
    decode_global_id,
    offset_connection,
    offset_page,
)
from schema.context import Context
from schema.errors import payload_errors
from schema.ids import node_uuid
from schema.operations.errors import JobError
from schema.operations.inputs import (
    JobPingInput,
    JobPingPayload,
    JobRetryInput,
    JobRetryPayload,
)
from schema.operations.types import JobFailureNode, JobPingNode
from schema.permissions import IsAdmin, require

JobCode = job_service.JobErrorCode
InfoT = Info[Context, Any]


def job_errors(exc: DomainError) -> list[JobError]:
    return payload_errors(JobError, exc)


# ---- queries --------------------------------------------------------------------------------


@strawberry.type
class JobQuery:
    @strawberry.field(
        description="Dead letters, most recently failed first (admin).",
        permission_classes=[IsAdmin],
    )
    async def job_failures(
        self,
        info: InfoT,
        actor: Annotated[
            str | None, strawberry.argument(description="Only this actor's, e.g. `system.ping`.")
        ] = None,
        status: Annotated[
            JobFailureStatus | None, strawberry.argument(description="Only DEAD or RETRIED ones.")
        ] = None,
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[JobFailureNode]:
        page = offset_page(first, after, info.context.settings.max_page_size)
        found = await job_service.failures_page(
            info.context.session, page, actor=actor, status=status
        )
        nodes = [JobFailureNode.from_model(failure) for failure in found.rows]
        return offset_connection(relay.Connection[JobFailureNode], nodes, page, found.has_next)

    @strawberry.field(
        description="A ping by id, to watch it go through the pipeline; null if none (admin).",
        permission_classes=[IsAdmin],
    )
    async def job_ping(
        self,
        info: InfoT,
        id: Annotated[strawberry.ID, strawberry.argument(description="The JobPing's global id.")],
    ) -> JobPingNode | None:
        try:
            ping_id = decode_global_id(id, "JobPing")
        except ValueError as exc:
            raise BadUserInput("Not a JobPing id.", "id") from exc
        ping = await job_service.get_ping(info.context.session, ping_id)
        return JobPingNode.from_model(ping) if ping is not None else None


# ---- mutations ------------------------------------------------------------------------------


async def _job_retry(info: InfoT, data: JobRetryInput) -> JobRetryPayload:
    principal = await require(info, Role.ADMIN)
    try:
        failure_id = node_uuid(data.id, "JobFailure", "id", JobCode.NOT_FOUND)
        failure = await job_service.retry_failure(
            info.context.session, failure_id, by=principal.key
        )
    except DomainError as exc:
        return JobRetryPayload(errors=job_errors(exc))
    return JobRetryPayload(failure=JobFailureNode.from_model(failure), errors=[])


async def _job_ping(info: InfoT, data: JobPingInput) -> JobPingPayload:
    principal = await require(info, Role.ADMIN)
    session = info.context.session
    try:
        ping = await job_service.request_ping(session, note=data.note or "", by=principal.key)
    except DomainError as exc:
        return JobPingPayload(errors=job_errors(exc))
    return JobPingPayload(ping=JobPingNode.from_model(ping), errors=[])


@strawberry.type
class JobMutation:
    @strawberry.mutation(
        description=(
            "Send a dead letter again as a new job with the same actor and arguments, once; "
            "it is marked RETRIED (admin)."
        )
    )
    async def job_retry(self, info: InfoT, input: JobRetryInput) -> JobRetryPayload:
        return await _job_retry(info, input)

    @strawberry.mutation(description="Send a canary job through outbox, broker and worker (admin).")
    async def job_ping(self, info: InfoT, input: JobPingInput) -> JobPingPayload:
        return await _job_ping(info, input)
