"""The app-start query costs a fixed number of SQL statements, whatever the number of goals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models.goals import UserGoalStatus
from app.models.identity import User
from app.runtime import Runtime
from tests.factories.goals import assign, create_template, finish, goals_of, record_and_process
from tests.factories.identity import access_token, create_user
from tests.factories.orders import order
from tests.helpers import gql

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

APP_START = """
query AppStart {
  launch { personalGoals { hasUnseenAchievements } }
  viewer {
    goals {
      active { id title progress { current total } conditions { rideClasses } }
      next { id title }
      recent { id status }
    }
  }
}
"""

# SAVEPOINT (the test's stand-in for BEGIN), the caller's user row (principal), the unseen
# achievement EXISTS (launch), the goals (one UNION ALL of active/next and recent done, joined
# to their templates), RELEASE SAVEPOINT (the stand-in for COMMIT).
APP_START_STATEMENTS = 5

DONE_GOALS = 8
WAITING_GOALS = 4  # one ACTIVE and three NEXT


@contextmanager
def counting_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends while the block runs."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def app_start(
    client: httpx.AsyncClient, runtime: Runtime, user: User
) -> tuple[dict[str, Any], list[str]]:
    token = await access_token(runtime, user)
    with counting_statements(runtime.engine) as statements:
        body = await gql(client, APP_START, token=token)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data, statements


async def test_the_app_start_query_costs_the_same_statements_for_1_or_12_goals(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    one = await create_user(runtime)
    await assign(runtime, one.id, (await create_template(runtime)).id)

    many = await create_user(runtime)
    quick = {"target": 1, "periodDays": 5}
    for _ in range(DONE_GOALS):
        await assign(runtime, many.id, (await create_template(runtime, conditions=quick)).id)
    for _ in range(WAITING_GOALS):
        await assign(runtime, many.id, (await create_template(runtime)).id)
    for _ in range(DONE_GOALS):
        await record_and_process(runtime, order(many.id))
    goals = await goals_of(runtime, many.id)
    for user_goal in goals[:DONE_GOALS]:
        assert await finish(runtime, user_goal.id)
    assert [g.status for g in goals] == [UserGoalStatus.DONE] * DONE_GOALS + [
        UserGoalStatus.ACTIVE
    ] + [UserGoalStatus.NEXT] * (WAITING_GOALS - 1)

    small, small_statements = await app_start(client, runtime, one)
    large, large_statements = await app_start(client, runtime, many)

    assert small["launch"]["personalGoals"] == {"hasUnseenAchievements": False}
    assert small["viewer"]["goals"]["active"]["progress"] == {"current": 0, "total": 3}
    assert (small["viewer"]["goals"]["next"], small["viewer"]["goals"]["recent"]) == ([], [])
    assert large["launch"]["personalGoals"] == {"hasUnseenAchievements": True}
    large_goals = large["viewer"]["goals"]
    assert large_goals["active"]["conditions"] == {"rideClasses": ["comfort"]}
    assert len(large_goals["next"]) == WAITING_GOALS - 1
    recent_shown = runtime.settings.goals_recent_done
    assert recent_shown < DONE_GOALS  # the recent list is cut, and costs no more for it
    assert [g["status"] for g in large_goals["recent"]] == ["DONE"] * recent_shown

    assert len(large_statements) == len(small_statements), (small_statements, large_statements)
    assert len(small_statements) == APP_START_STATEMENTS, small_statements

    def selects(statements: list[str], table: str) -> int:
        return sum(
            1 for s in statements if s.lstrip().startswith("SELECT") and f"FROM {table}" in s
        )

    for statements in (small_statements, large_statements):
        assert selects(statements, "users") == 1, statements
        assert selects(statements, "goal_notifications") == 1, statements
        assert sum("user_goals" in s for s in statements) == 1, statements
