"""Assembles the per-domain Query, Mutation and Subscription classes into one schema."""

from __future__ import annotations

import strawberry
import structlog
from graphql import GraphQLError
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from app.settings import Settings
from resolvers.goals.admin import GoalAdminMutation, GoalAdminQuery
from resolvers.goals.assign import GoalAssignMutation, GoalAssignQuery
from resolvers.goals.queries import GoalMutation, GoalQuery
from resolvers.identity.mutations import UserMutation, UserQuery
from resolvers.operations.admin import JobMutation, JobQuery
from resolvers.promocodes.admin import PromocodeAdminMutation
from resolvers.promocodes.admin_queries import PromocodeAdminQuery
from resolvers.promocodes.queries import PromocodeMutation, PromocodeQuery
from schema.context import Context
from schema.extensions import build_extensions, is_unexpected
from schema.goals.events import GoalEventSubscription

log = structlog.get_logger("engage.graphql")

QUERIES: tuple[type, ...] = (
    UserQuery,
    GoalQuery,
    GoalAssignQuery,
    JobQuery,
    PromocodeQuery,
    PromocodeAdminQuery,
    GoalAdminQuery,
)
MUTATIONS: tuple[type, ...] = (
    UserMutation,
    GoalMutation,
    GoalAssignMutation,
    JobMutation,
    PromocodeMutation,
    PromocodeAdminMutation,
    GoalAdminMutation,
)
# Served over WebSocket (app/graphql_ws.py); HTTP refuses subscriptions.
SUBSCRIPTIONS: tuple[type, ...] = (GoalEventSubscription,)


class EngageSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors with the request id and mark the unit of work failed.

        Runs before `MaskErrors` rewrites them, so the log keeps the real exception.
        """
        context = execution_context.context if execution_context else None
        for error in errors:
            if not is_unexpected(error):
                continue
            if isinstance(context, Context):
                context.failed = True
            log.error(
                "graphql.unexpected_error",
                operation=execution_context.operation_name if execution_context else None,
                path=error.path,
                exc_info=error.original_error,
            )


def build_schema(settings: Settings) -> strawberry.Schema:
    # relay.node() binds its resolver to the field when a schema is built, so each schema gets a
    # fresh one (tests build several schemas in one process).
    @strawberry.type
    class NodeQuery:
        node: relay.Node | None = relay.node()

    return EngageSchema(
        query=merge_types("Query", (NodeQuery, *QUERIES)),
        mutation=merge_types("Mutation", MUTATIONS),
        subscription=merge_types("Subscription", SUBSCRIPTIONS),
        extensions=build_extensions(settings),
        config=StrawberryConfig(relay_max_results=settings.max_page_size),
    )
