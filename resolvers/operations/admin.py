"""Job system resolvers (admin): dead letters and their retry, the ping canary."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role
from app.models.operations import JobFailure, JobFailureStatus, JobPing
from app.services.errors import DomainError
from app.services.operations import jobs as job_service
from resolvers.permissions import IsAdmin, require
from schema.base import (
    After,
    BadUserInput,
    PageSize,
    build_connection,
    decode_global_id,
    paginate,
)
from schema.context import Context
from schema.ids import node_uuid, rows_by_ids
from schema.operations.types import (
    JobError,
    JobFailureNode,
    JobPingInput,
    JobPingNode,
    JobPingPayload,
    JobRetryInput,
    JobRetryPayload,
)

JobCode = job_service.JobErrorCode
InfoT = Info[Context, Any]


def job_errors(exc: DomainError) -> list[JobError]:
    return [JobError(code=JobCode(exc.code.value), field=exc.field, message=exc.message)]


# ---- loaders behind Node resolution (admin only, like Group) ------------------------------


async def job_failures_by_ids(info: InfoT, ids: list[str]) -> list[JobFailureNode | None]:
    await require(info, Role.ADMIN)
    found = await rows_by_ids(info.context.session, JobFailure, ids)
    return [JobFailureNode.from_model(row) if row is not None else None for row in found]


async def job_pings_by_ids(info: InfoT, ids: list[str]) -> list[JobPingNode | None]:
    await require(info, Role.ADMIN)
    found = await rows_by_ids(info.context.session, JobPing, ids)
    return [JobPingNode.from_model(row) if row is not None else None for row in found]


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
        statement = job_service.failures_query(actor=actor, status=status)
        rows, start, has_next, has_prev = await paginate(
            info.context.session, statement, first, after, info.context.settings.max_page_size
        )
        nodes = [JobFailureNode.from_model(failure) for failure in rows]
        return build_connection(relay.Connection[JobFailureNode], nodes, start, has_next, has_prev)

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
        ping = await info.context.session.get(JobPing, ping_id)
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
