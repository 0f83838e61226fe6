"""Operations' mutation inputs and payloads (admin)."""

from __future__ import annotations

import strawberry

from schema.operations.errors import JobError
from schema.operations.types import JobFailureNode, JobPingNode


@strawberry.input(description="Which dead letter to send again.")
class JobRetryInput:
    id: strawberry.ID = strawberry.field(description="The JobFailure's global id.")


@strawberry.input(description="A canary job to send through the pipeline.")
class JobPingInput:
    note: str | None = strawberry.field(
        default="",
        description="Printable text, at most 200 characters, to recognise the ping by.",
    )


@strawberry.type(description="The result of `jobRetry`.")
class JobRetryPayload:
    failure: JobFailureNode | None = strawberry.field(
        default=None, description="The failure, now RETRIED; null when refused."
    )
    errors: list[JobError] = strawberry.field(
        description="Why the retry was refused; empty if not."
    )


@strawberry.type(description="The result of `jobPing`.")
class JobPingPayload:
    ping: JobPingNode | None = strawberry.field(
        default=None, description="The ping just sent; null when refused."
    )
    errors: list[JobError] = strawberry.field(description="Why the ping was refused; empty if not.")
