"""Retries with backoff, dead letters, and their replay through the admin API."""

from __future__ import annotations

import pytest
from dramatiq import Worker
from sqlalchemy import func, select

from app.models.identity import AuditLog, Role
from app.models.operations import JobFailure, JobFailureStatus
from app.runtime import Runtime
from tests.conftest import make_client
from tests.factories.identity import access_token, create_user
from tests.helpers import error_codes, gql
from tests.jobs import actors
from tests.jobs.conftest import eventually, metric

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

JOB_FAILURES = """
query Failures($actor: String) {
  jobFailures(actor: $actor, first: 10) {
    edges { node { id actor status kwargs error traceback retries retryMessageId } }
  }
}
"""
JOB_RETRY = """
mutation Retry($id: ID!) {
  jobRetry(input: {id: $id}) { failure { id status retryMessageId } errors { code field } }
}
"""


async def _effects(runtime: Runtime, key: str) -> int:
    async with runtime.session_factory() as session:
        return int(
            await session.scalar(
                select(func.count()).where(
                    AuditLog.action == actors.EFFECT_ACTION, AuditLog.target == key
                )
            )
            or 0
        )


async def _failures(runtime: Runtime) -> list[JobFailure]:
    async with runtime.session_factory() as session:
        return list((await session.scalars(select(JobFailure))).all())


async def test_failing_actor_retries_with_growing_backoff_then_succeeds(
    jobs_runtime: Runtime, worker: Worker
) -> None:
    retried_before = metric("engage_jobs_retried_total", "test.flaky")
    actors.flaky.send(key="flaky-1", failures=2)

    async def applied() -> bool:
        return await _effects(jobs_runtime, "flaky-1") == 1

    await eventually(applied, what="the flaky actor to succeed")
    runs = actors.attempts["flaky-1"]
    assert len(runs) == 3
    # Dramatiq's backoff: min_backoff (200 ms) x 2^retry, plus up to 100 % jitter.
    assert runs[1] - runs[0] >= 0.2
    assert runs[2] - runs[1] >= 0.4
    assert metric("engage_jobs_retried_total", "test.flaky") - retried_before == 2
    assert await _failures(jobs_runtime) == []


async def test_exhausted_job_is_dead_lettered_and_replayed_by_an_admin(
    jobs_runtime: Runtime, worker: Worker
) -> None:
    actors.broken.send(key="broken-1")

    async def dead_lettered() -> bool:
        return len(await _failures(jobs_runtime)) == 1

    await eventually(dead_lettered, what="the dead letter")
    [failure] = await _failures(jobs_runtime)
    assert failure.actor == "test.broken"
    assert failure.kwargs == {"key": "broken-1"}
    assert failure.status is JobFailureStatus.DEAD
    assert "ValueError: broken-1 is broken on purpose" in failure.error
    assert "ValueError" in failure.traceback
    assert failure.retries == 2  # the first run and one retry
    assert len(actors.attempts["broken-1"]) == 2

    admin = await create_user(jobs_runtime, roles=(Role.ADMIN,))
    user = await create_user(jobs_runtime)
    async with make_client(jobs_runtime) as client:
        user_token = await access_token(jobs_runtime, user)
        refused = await gql(client, JOB_FAILURES, token=user_token)
        assert error_codes(refused) == ["FORBIDDEN"] and refused["data"] is None
        listed = await gql(
            client,
            JOB_FAILURES,
            {"actor": "test.broken"},
            token=await access_token(jobs_runtime, admin),
        )
        [edge] = listed["data"]["jobFailures"]["edges"]
        assert edge["node"]["status"] == "DEAD" and "broken on purpose" in edge["node"]["error"]
        failure_id = edge["node"]["id"]

        refused = await gql(client, JOB_RETRY, {"id": failure_id}, token=user_token)
        assert error_codes(refused) == ["FORBIDDEN"]
        assert (await _failures(jobs_runtime))[0].status is JobFailureStatus.DEAD

        actors.healed.add("broken-1")
        admin_token = await access_token(jobs_runtime, admin)
        retried = await gql(client, JOB_RETRY, {"id": failure_id}, token=admin_token)
        payload = retried["data"]["jobRetry"]
        assert payload["errors"] == [] and payload["failure"]["status"] == "RETRIED"

        async def replayed() -> bool:
            return await _effects(jobs_runtime, "broken-1") == 1

        await eventually(replayed, what="the replayed job")
        again = await gql(client, JOB_RETRY, {"id": failure_id}, token=admin_token)
        assert [e["code"] for e in again["data"]["jobRetry"]["errors"]] == ["ALREADY_RETRIED"]
    assert await _effects(jobs_runtime, "broken-1") == 1
    assert len(await _failures(jobs_runtime)) == 1
