"""Schema extensions: limits, caches, error masking and per-operation metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from app import metrics
from app.settings import Settings


def is_unexpected(error: GraphQLError) -> bool:
    """Mask only bugs: errors raised by code that were not meant for the client.

    Syntax and validation errors, auth errors and GraphQL errors raised on purpose carry no
    foreign `original_error` and are shown as they are.
    """
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class OperationMetrics(SchemaExtension):
    """Counts operations and their latency by operation name, and the errors they return."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        name = context.operation_name or "anonymous"
        try:
            kind = context.operation_type.value
        except RuntimeError:
            kind = "unknown"
        result = context.result
        errors = context.pre_execution_errors or (result.errors if result else None) or []
        record_operation(name, kind, time.perf_counter() - started, errors)


CACHE_SIZE = 256


def build_extensions(settings: Settings) -> list[Any]:
    """Extension factories: each request gets its own instances (they hold its context).

    The parser and validation caches live at module level in strawberry, shared by all
    instances of one size. The validation cache's key includes the validation rules, and
    the depth and alias limiters create new rule classes per instance, so their rules are
    built once here; per-request limiters would make every request miss the cache.
    """
    limit_rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    extensions: list[Any] = [
        OperationMetrics,
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: AddValidationRules(limit_rules),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    if settings.mask_errors_enabled:
        extensions.append(lambda: MaskErrors(should_mask_error=is_unexpected))
    return extensions


def _error_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
        return "INTERNAL"
    return "BAD_REQUEST"


def record_operation(name: str, kind: str, seconds: float, errors: Sequence[GraphQLError]) -> None:
    # Operation names are client-chosen: cap their length to bound label values.
    name = name[:64]
    metrics.GRAPHQL_OPERATIONS.labels(name, kind).inc()
    metrics.GRAPHQL_LATENCY.labels(name, kind).observe(seconds)
    for error in errors:
        metrics.GRAPHQL_ERRORS.labels(name, _error_code(error)).inc()
