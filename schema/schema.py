"""Assembles one schema from what each domain contributes (`resolvers/<domain>/__init__.py`).

The domains are `app.domains.DOMAINS`; each contributes Query, Mutation and Subscription
classes and fields of `Viewer` and `Launch` (`resolvers.contributions.Contribution`). This
module is the one place in `schema/` that imports `resolvers`: it is the composition root of
the GraphQL layer, not a domain.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from functools import cache
from typing import Annotated, Any, cast

import strawberry
import structlog
from graphql import GraphQLError, GraphQLSchema
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import CustomGraphQLEnumType
from strawberry.types import ExecutionContext, Info, get_object_definition
from strawberry.types.cast import cast as strawberry_cast

from app.domains import domain_modules
from app.settings import Settings
from resolvers.contributions import Contribution
from schema.context import Context
from schema.extensions import build_extensions, is_unexpected
from schema.permissions import AuthError, IsAuthenticated

log = structlog.get_logger("engage.graphql")


@cache
def contributions() -> tuple[Contribution, ...]:
    """Every domain's contribution, in `DOMAINS` order."""
    return tuple(module.contribution for module in domain_modules("resolvers"))


def merged(name: str, classes: Iterable[type], description: str | None = None) -> type:
    """One strawberry type with the fields of `classes`, in their order; a field name
    contributed twice is a programming error."""
    classes = tuple(classes)
    seen: dict[str, type] = {}
    for cls in classes:
        for field in cls.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            if field.name in seen:
                raise TypeError(
                    f"{name}.{field.name} is contributed by both {seen[field.name].__name__} "
                    f"and {cls.__name__}"
                )
            seen[field.name] = cls
    return strawberry.type(type(name, classes, {}), name=name, description=description)


@cache
def viewer_type() -> type:
    return merged(
        "Viewer",
        (cls for part in contributions() for cls in part.viewer),
        "The signed-in user. Each domain hangs the caller's own data off this type.",
    )


@cache
def launch_type() -> type:
    return merged(
        "Launch",
        (cls for part in contributions() for cls in part.launch),
        "What the app needs on start, one field per domain.",
    )


def _roots() -> type:
    viewer, launch = viewer_type(), launch_type()

    async def resolve_viewer(info: Info[Context, Any]) -> Any:
        principal = await info.context.principal()
        if principal.user_id is None:
            raise AuthError("FORBIDDEN", "Service tokens have no viewer.")
        return viewer()

    def resolve_launch() -> Any:
        return launch()

    async def resolve_node(
        info: Info[Context, Any],
        id: Annotated[strawberry.ID, strawberry.argument(description="The ID of the object.")],
    ) -> relay.Node | None:
        # relay.node() would raise on an id of no Node type (an unexpected error, masked in
        # production) and refuse one that is no global id at all: both are null here, like
        # an id that names nothing or an object the caller may not see.
        try:
            gid = relay.GlobalID.from_id(id)
            node_type = gid.resolve_type(info)
        except relay.GlobalIDValueError:
            return None
        if get_object_definition(node_type, strict=True).is_interface:  # `Node` itself
            return None
        node = node_type.resolve_node(gid.node_id, info=info, required=False)
        if inspect.isawaitable(node):
            node = await node
        return None if node is None else strawberry_cast(node_type, node)

    @strawberry.type
    class RootQuery:
        node: relay.Node | None = strawberry.field(
            resolver=resolve_node,
            description="The object a global id names; null if none, or not yours to see.",
        )
        viewer_field: Any = strawberry.field(
            name="viewer",
            resolver=resolve_viewer,
            graphql_type=viewer,
            description="The signed-in user.",
            permission_classes=[IsAuthenticated],
        )
        launch_field: Any = strawberry.field(
            name="launch",
            resolver=resolve_launch,
            graphql_type=launch,
            description="The app-start query: one call for what every screen needs.",
        )

    return RootQuery


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
    # relay.node() binds its resolver to the field when a schema is built, so each schema gets
    # fresh root fields (tests build several schemas in one process).
    parts = contributions()
    schema = EngageSchema(
        query=merged("Query", (_roots(), *(cls for part in parts for cls in part.queries))),
        mutation=merged("Mutation", (cls for part in parts for cls in part.mutations)),
        subscription=merged("Subscription", (cls for part in parts for cls in part.subscriptions)),
        extensions=build_extensions(settings),
        config=StrawberryConfig(relay_max_results=settings.max_page_size),
    )
    _index_enum_outputs(schema._schema)
    return schema


def _index_enum_outputs(graphql_schema: GraphQLSchema) -> None:
    """Serialize enum values by one dict lookup instead of strawberry's scan of every value
    per output (a goal read serializes several enums per goal: 4 % of its server CPU).

    Set on each enum type of this schema only; values that are not members of the Python
    enum (or unknown members) take the original path and its errors.
    """
    for graphql_type in graphql_schema.type_map.values():
        if not isinstance(graphql_type, CustomGraphQLEnumType):
            continue
        names = {value.value: name for name, value in graphql_type.values.items()}

        def coerce(
            output: Any,
            names: dict[Any, str] = names,
            wrapped: type = graphql_type.wrapped_cls,
            original: Any = graphql_type.coerce_output_value,
        ) -> str:
            if isinstance(output, wrapped):
                name = names.get(cast(Any, output).value)
                if name is not None:
                    return name
            return str(original(output))

        patched = cast(Any, graphql_type)  # an instance attribute shadows the method
        patched.coerce_output_value = patched.serialize = coerce
