"""Schema extensions: limits, caches, error masking, suggestions and per-operation metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from functools import _CacheInfo, lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, get_operation_ast, validate
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import get_variable_values
from graphql.validation import ASTValidationRule
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
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

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
# graphql-core's own bound on variable coercion errors (`Executor.build`).
MAX_COERCION_ERRORS = 50


@lru_cache(maxsize=CACHE_SIZE)
def _validate_quietly(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
) -> list[GraphQLError]:
    """strawberry's validation (its rules added, as `validate_document` does), without
    suggestions; cached like strawberry's `ValidationCache`."""
    all_rules = (*rules, MaybeNullValidationRule, OneOfInputValidationRule)
    return validate(schema, document, all_rules, hide_suggestions=True)


def quiet_validation_cache_info() -> _CacheInfo:
    return _validate_quietly.cache_info()


class QuietValidationCache(SchemaExtension):
    """`ValidationCache` without "Did you mean …?" in its errors.

    graphql-core leaves suggestions out when asked (`hide_suggestions`); strawberry never
    asks. Setting the errors before validation makes strawberry skip its own."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        context.pre_execution_errors = _validate_quietly(
            context.schema._schema, context.graphql_document, tuple(context.validation_rules)
        )
        yield


class QuietVariables(SchemaExtension):
    """Variables whose values don't fit their types are refused without suggestions.

    graphql-core coerces variables when execution starts and names the input fields or enum
    values meant; this coerces them first with `hide_suggestions` and, if they don't fit, ends
    the operation with those errors (a query or mutation gets all of them as its result; a
    subscription, which strawberry runs on another path, the first as its error)."""

    def on_execute(self) -> Iterator[None]:
        errors = _variable_errors(self.execution_context)
        if errors:
            if self.execution_context.operation_type is OperationType.SUBSCRIPTION:
                raise errors[0]
            self.execution_context.result = GraphQLExecutionResult(data=None, errors=errors)
        yield


def _variable_errors(context: ExecutionContext) -> list[GraphQLError]:
    document = context.graphql_document
    operation = get_operation_ast(document, context.operation_name) if document else None
    if operation is None:  # no such operation: execution reports it
        return []
    coerced = get_variable_values(
        context.schema._schema,
        operation.variable_definitions or (),
        context.variables or {},
        max_errors=MAX_COERCION_ERRORS,
        hide_suggestions=True,
    )
    return coerced if isinstance(coerced, list) else []


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
    ]
    if settings.suggestions_enabled:
        extensions.append(lambda: ValidationCache(maxsize=CACHE_SIZE))
    else:
        extensions += [QuietValidationCache, QuietVariables]
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
