"""The ASGI app that bench_goals_read.py serves: three ways to answer the goals read path,
in one process, on one engine.

    uvicorn --factory bench._goals_read_app:create_app   (settings from the environment)

- `/graphql` (and every path but `/baseline/...`): engage's real application,
  `app.main.create_app(settings)`, untouched: its middleware, its GraphQL-over-HTTP endpoint,
  its strawberry schema with its extensions, its resolvers and its unit of work.
- `/baseline/core`: a plain Starlette endpoint, no GraphQL. Same credential check (the
  Bearer access token verified by engage's `AccessTokenCodec`, then the caller's `users`
  row), then the same two statements engage's resolvers send (the unseen-achievements EXISTS
  and the goals UNION), on a connection of engage's own engine in one transaction, and the
  same JSON as engage's answer, written with orjson.
- `/baseline/graphql-core`: raw graphql-core. A `GraphQLSchema` built with
  `graphql.build_schema` from engage's own SDL (printed from its strawberry schema, so every
  type, enum and nullability is engage's), with four plain async resolvers running the same
  statements as `/baseline/core`, and graphql-core's default resolvers for everything else
  (the goal objects are dicts). The request's document is parsed and validated once, at
  start-up (a persisted-document cache); each request only runs `graphql.execute`, with an
  `is_awaitable` that skips plain values (as strawberry's own call does).
- `/baseline/statements`: GET `?start` starts recording what the engine sends (statements
  and BEGIN/COMMIT/ROLLBACK), GET `?stop` stops and returns it as JSON; the listeners are
  attached only while recording, so they cost nothing in the measured runs.

The baselines share the per-row work with engage where it is domain logic rather than
GraphQL: `localize`/`localize_lines` for the texts, and `snapshot_conditions` (parsed once
per distinct conditions snapshot) for the conditions view.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from inspect import isawaitable
from typing import Any, TypeGuard

import orjson
from graphql import (
    DocumentNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    build_schema,
    execute,
    parse,
    print_schema,
    validate,
)
from graphql.pyutils import is_awaitable as graphql_is_awaitable
from sqlalchemy import Integer, bindparam, event, exists, select, union_all
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.relay import to_base64

from app.auth import AccessTokenCodec, TokenError
from app.main import create_app as create_engage_app
from app.models.base import utcnow
from app.models.goals import (
    GoalNotification,
    GoalTemplate,
    NotificationKind,
    UserGoal,
    UserGoalStatus,
)
from app.models.identity import Role, User, UserStatus
from app.runtime import Runtime
from app.services.goals.conditions import RollingPeriod, snapshot_conditions
from app.services.goals.reading import _GOAL_COLUMNS, shown_status
from app.services.goals.texts import localize, localize_lines
from app.settings import get_settings

GOAL_FIELDS = """
  id goalId status title description details buttonText
  progress { current total }
  startsAt expiresAt doneAt
  conditions {
    rideClasses paymentMethods timeWindow { start end } minPrice { amountMinor currency }
    orderKinds periodDays
  }
  bonus { type definition grantedAt granted }
"""
# The read path: the app-start summary and the viewer's goals, in one request.
QUERY = (
    "query { launch { personalGoals { hasUnseenAchievements } } "
    "viewer { goals { active { ...G } next { ...G } recent { ...G } } } }\n"
    "fragment G on UserGoal {" + " ".join(GOAL_FIELDS.split()) + "}"
)

JSON_MEDIA_TYPE = "application/json; charset=utf-8"

# --- the statements engage's resolvers send, built once with bind parameters --------------

_USERS = User.__table__
# What `resolve_principal` selects (app/services/identity/principals.py).
USER_BY_ID = select(_USERS.c.id, _USERS.c.status, _USERS.c.roles, _USERS.c.locale).where(
    _USERS.c.id == bindparam("user_id")
)
# reading.has_unseen_achievements
UNSEEN = select(
    exists().where(
        GoalNotification.user_id == bindparam("user_id"),
        GoalNotification.kind == NotificationKind.ACHIEVEMENT,
        GoalNotification.seen_at.is_(None),
    )
)


def _goals_select() -> Any:
    return select(*_GOAL_COLUMNS).join(GoalTemplate, GoalTemplate.id == UserGoal.goal_id)


# reading.viewer_goals: ACTIVE and NEXT goals, plus the last `recent_done` DONE ones
GOALS = union_all(
    _goals_select().where(
        UserGoal.user_id == bindparam("user_id"),
        UserGoal.status.in_([UserGoalStatus.ACTIVE, UserGoalStatus.NEXT]),
    ),
    _goals_select()
    .where(UserGoal.user_id == bindparam("user_id"), UserGoal.status == UserGoalStatus.DONE)
    .order_by(UserGoal.done_at.desc(), UserGoal.id)
    .limit(bindparam("recent_done", type_=Integer))
    .subquery()
    .select(),
)


class Unauthorized(Exception):
    pass


async def load_user(codec: AccessTokenCodec, conn: AsyncConnection, header: str | None) -> Row[Any]:
    """The caller's `users` row, checked as engage's `resolve_principal` checks it."""
    scheme, _, credential = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("MALFORMED")
    try:
        claims = await codec.verify_async(credential.strip())
        user_id = uuid.UUID(claims.subject)
    except (TokenError, ValueError) as exc:
        raise Unauthorized("INVALID") from exc
    user = (await conn.execute(USER_BY_ID, {"user_id": user_id})).one_or_none()
    if user is None or user.status != UserStatus.ACTIVE or Role.USER.value not in user.roles:
        raise Unauthorized("UNKNOWN_USER")
    return user


# --- the JSON of one goal, as engage's `goal_node` and strawberry would write it -------------


def conditions_json(data: dict[str, Any]) -> dict[str, Any]:
    conditions = snapshot_conditions(data)
    window = conditions.time_window
    price = conditions.min_price
    return {
        "rideClasses": sorted(c.value for c in conditions.ride_classes),
        "paymentMethods": sorted(m.value for m in conditions.payment_methods),
        "timeWindow": None
        if window is None
        else {"start": window.start.strftime("%H:%M"), "end": window.end.strftime("%H:%M")},
        "minPrice": None
        if price is None
        else {"amountMinor": price.amount_minor, "currency": price.currency},
        "orderKinds": sorted(k.value for k in conditions.order_kinds),
        "periodDays": conditions.period.days
        if isinstance(conditions.period, RollingPeriod)
        else None,
    }


def goal_json(row: Row[Any], status: UserGoalStatus, locale: str | None) -> dict[str, Any]:
    default = row.default_locale
    bonus = row.bonus
    return {
        "id": to_base64("UserGoal", str(row.id)),
        "goalId": row.goal_id,
        "status": status.value,
        "title": localize(row.title, locale, default),
        "description": localize(row.description, locale, default),
        "details": localize_lines(row.details, locale, default),
        "buttonText": localize(row.button_text, locale, default),
        "progress": {"current": row.progress, "total": row.target},
        "startsAt": row.starts_at,
        "expiresAt": row.expires_at,
        "doneAt": row.done_at,
        "conditions": conditions_json(row.conditions),
        "bonus": {
            "type": str(bonus.get("type")),
            "definition": bonus,
            "grantedAt": row.bonus_granted_at,
            "granted": row.bonus_details,
        },
    }


def arrange(rows: list[Row[Any]], locale: str | None, now: datetime) -> dict[str, Any]:
    """reading._arrange: the active goal, the waiting ones in order, overdue + recent DONE."""
    active: dict[str, Any] | None = None
    upcoming: list[tuple[int, uuid.UUID, dict[str, Any]]] = []
    overdue: list[dict[str, Any]] = []
    done: list[tuple[datetime, dict[str, Any]]] = []
    for row in rows:
        status = shown_status(UserGoalStatus(row.status), row.expires_at, now)
        if status is UserGoalStatus.ACTIVE:
            if active is None:
                active = goal_json(row, status, locale)
        elif status is UserGoalStatus.NEXT:
            upcoming.append((row.position, row.id, goal_json(row, status, locale)))
        elif status is UserGoalStatus.MISSED:
            overdue.append(goal_json(row, status, locale))
        elif status is UserGoalStatus.DONE:
            done.append((row.done_at or row.created_at, goal_json(row, status, locale)))
    upcoming.sort(key=lambda item: (item[0], item[1]))
    done.sort(key=lambda item: item[0], reverse=True)
    return {
        "active": active,
        "next": [item[2] for item in upcoming],
        "recent": overdue + [item[1] for item in done],
    }


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_MEDIA_TYPE)


def _unauthorized(reason: str) -> Response:
    return _json({"errors": [{"message": "Unauthorized", "extensions": {"reason": reason}}]}, 401)


# --- baseline (a): plain SQLAlchemy Core, no GraphQL -------------------------------------


def core_endpoint(
    engine: AsyncEngine, codec: AccessTokenCodec, recent_done: int
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        await request.body()  # the same GraphQL request body arrives; it says nothing new here
        async with engine.begin() as conn:
            try:
                user = await load_user(codec, conn, request.headers.get("authorization"))
            except Unauthorized as exc:
                return _unauthorized(str(exc))
            params = {"user_id": user.id}
            unseen = bool((await conn.execute(UNSEEN, params)).scalar())
            rows = list((await conn.execute(GOALS, {**params, "recent_done": recent_done})).all())
        goals = arrange(rows, user.locale, utcnow())
        return _json(
            {
                "data": {
                    "launch": {"personalGoals": {"hasUnseenAchievements": unseen}},
                    "viewer": {"goals": goals},
                }
            }
        )

    return endpoint


# --- baseline (b): raw graphql-core ------------------------------------------------------


class RawContext:
    """Per request: the connection (its statements take turns, like engage's
    SerializedSession) and the caller's row, loaded once by whichever resolver asks first."""

    def __init__(self, conn: AsyncConnection, codec: AccessTokenCodec, header: str | None):
        self.conn = conn
        self.codec = codec
        self.header = header
        self.turn = asyncio.Lock()
        self.user_lock = asyncio.Lock()
        self._user: Row[Any] | None = None

    async def execute(self, statement: Any, params: dict[str, Any]) -> Any:
        async with self.turn:
            return await self.conn.execute(statement, params)

    async def user(self) -> Row[Any]:
        if self._user is None:
            async with self.user_lock:
                if self._user is None:
                    async with self.turn:
                        self._user = await load_user(self.codec, self.conn, self.header)
        return self._user


def build_raw_schema(engage_schema: GraphQLSchema, recent_done: int) -> GraphQLSchema:
    schema = build_schema(print_schema(engage_schema))
    date_time = schema.type_map["DateTime"]
    assert isinstance(date_time, GraphQLScalarType)
    date_time.serialize = datetime.isoformat  # type: ignore[method-assign,assignment]

    def launch(_root: Any, _info: GraphQLResolveInfo) -> dict[str, Any]:
        return {}

    async def personal_goals(_root: Any, info: GraphQLResolveInfo) -> dict[str, Any] | None:
        context: RawContext = info.context
        try:
            user = await context.user()
        except Unauthorized:
            return None
        unseen = (await context.execute(UNSEEN, {"user_id": user.id})).scalar()
        return {"hasUnseenAchievements": bool(unseen)}

    async def viewer(_root: Any, info: GraphQLResolveInfo) -> dict[str, Any]:
        return {"user": await info.context.user()}

    async def goals(parent: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any]:
        user = parent["user"]
        params = {"user_id": user.id, "recent_done": recent_done}
        rows = list((await info.context.execute(GOALS, params)).all())
        return arrange(rows, user.locale, utcnow())

    def field(type_name: str, name: str) -> Any:
        owner = schema.type_map[type_name]
        assert isinstance(owner, GraphQLObjectType)
        return owner.fields[name]

    field("Query", "launch").resolve = launch
    field("Launch", "personalGoals").resolve = personal_goals
    field("Query", "viewer").resolve = viewer
    field("Viewer", "goals").resolve = goals
    return schema


_PLAIN = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict, set, frozenset})


def is_awaitable(value: Any) -> TypeGuard[Awaitable[Any]]:
    """graphql-core's check with a fast path for plain values: strawberry passes the same
    kind of function to `execute`, so the baseline gets it too."""
    return type(value) not in _PLAIN and graphql_is_awaitable(value)


def graphql_core_endpoint(
    engine: AsyncEngine, codec: AccessTokenCodec, schema: GraphQLSchema
) -> Callable[[Request], Awaitable[Response]]:
    documents: dict[str, DocumentNode] = {}
    document = parse(QUERY)
    errors = validate(schema, document)
    if errors:
        raise RuntimeError(f"the bench query does not validate: {errors}")
    documents[QUERY] = document

    async def endpoint(request: Request) -> Response:
        params = orjson.loads(await request.body())
        found = documents.get(params.get("query"))
        if found is None:
            return _json({"errors": [{"message": "Unknown document."}]}, 400)
        async with engine.begin() as conn:
            context = RawContext(conn, codec, request.headers.get("authorization"))
            result = execute(schema, found, context_value=context, is_awaitable=is_awaitable)
            if isawaitable(result):
                result = await result
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return _json(body)

    return endpoint


# --- statement recording -------------------------------------------------------------------


class StatementRecorder:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.seen: list[str] = []
        self.on = False

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(" ".join(statement.split())[:160])

    def _begin(self, conn: Any) -> None:
        self.seen.append("BEGIN")

    def _commit(self, conn: Any) -> None:
        self.seen.append("COMMIT")

    def _rollback(self, conn: Any) -> None:
        self.seen.append("ROLLBACK")

    def _hooks(self) -> list[tuple[str, Callable[..., None]]]:
        return [
            ("before_cursor_execute", self._statement),
            ("begin", self._begin),
            ("commit", self._commit),
            ("rollback", self._rollback),
        ]

    async def endpoint(self, request: Request) -> Response:
        if "start" in request.query_params and not self.on:
            self.seen = []
            for name, hook in self._hooks():
                event.listen(self.engine, name, hook)
            self.on = True
        elif "stop" in request.query_params and self.on:
            for name, hook in self._hooks():
                event.remove(self.engine, name, hook)
            self.on = False
        return JSONResponse({"recording": self.on, "statements": self.seen})


# --- the app -------------------------------------------------------------------------------


def create_app() -> ASGIApp:
    settings = get_settings()
    # One process serves all three subjects, so they share the interpreter settings:
    # engage serve's (BENCH_GOALS_READ_GC=tuned, the default) or Python's (=default).
    tuned = os.environ.get("BENCH_GOALS_READ_GC", "tuned") == "tuned"
    engage = create_engage_app(settings, tune_interpreter=tuned)
    runtime: Runtime = engage.state.runtime
    from schema.schema import build_schema as build_engage_schema

    engage_schema = build_engage_schema(settings)._schema
    recent_done = settings.goals_recent_done
    recorder = StatementRecorder(runtime.engine)
    raw_schema = build_raw_schema(engage_schema, recent_done)
    baselines = Starlette(
        routes=[
            Route(
                "/baseline/core",
                core_endpoint(runtime.engine, runtime.codec, recent_done),
                methods=["POST"],
            ),
            Route(
                "/baseline/graphql-core",
                graphql_core_endpoint(runtime.engine, runtime.codec, raw_schema),
                methods=["POST"],
            ),
            Route("/baseline/statements", recorder.endpoint),
        ]
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/baseline/"):
            await baselines(scope, receive, send)
        else:  # /graphql, /readyz, ... and the lifespan: engage's
            await engage(scope, receive, send)

    return app


def main() -> None:
    """`python -m bench._goals_read_app PORT`: uvicorn as `engage serve` runs it."""
    import sys

    import uvicorn

    uvicorn.run(
        "bench._goals_read_app:create_app",
        factory=True,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
