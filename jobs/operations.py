"""Actors of the job system itself."""

from __future__ import annotations

import uuid

from app.services.operations.jobs import PING_ACTOR, apply_ping
from jobs.broker import actor
from jobs.runtime import claim, unit_of_work


@actor(PING_ACTOR, max_retries=3)
async def ping(ping_id: str) -> None:
    """The canary: claim the message, then apply the effect, in one transaction."""
    async with unit_of_work() as session:
        if not await claim(session):
            return
        await apply_ping(session, uuid.UUID(ping_id))
