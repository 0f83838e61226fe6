"""Operations' error type: the service's JobErrorCode is the GraphQL enum."""

from __future__ import annotations

import strawberry

from app.services.operations.jobs import JobErrorCode

strawberry.enum(
    JobErrorCode,
    name="JobErrorCode",
    description=(
        "Why a job mutation was refused. NOT_FOUND: no such object (or the id is not one of "
        "its type). INVALID_NOTE: the ping note is too long or not printable. ALREADY_RETRIED: "
        "the failure was retried before. UNKNOWN_ACTOR: the failed job's actor no longer exists."
    ),
)


@strawberry.type(description="A rejected job mutation: what was wrong and with which field.")
class JobError:
    code: JobErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(
        description="The input field at fault, when one is; null for the request as a whole."
    )
    message: str = strawberry.field(description="A human-readable explanation, for operators.")
