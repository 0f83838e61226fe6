"""Prometheus metrics of the API process."""

from __future__ import annotations

from collections.abc import Sequence

from graphql import GraphQLError
from prometheus_client import Counter, Histogram

GRAPHQL_OPERATIONS = Counter(
    "engage_graphql_operations_total",
    "GraphQL operations executed, by operation name and type.",
    ["operation", "type"],
)
GRAPHQL_LATENCY = Histogram(
    "engage_graphql_operation_seconds",
    "Time spent executing a GraphQL operation.",
    ["operation", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
GRAPHQL_ERRORS = Counter(
    "engage_graphql_errors_total",
    "GraphQL errors returned, by operation name and error code.",
    ["operation", "code"],
)
HTTP_REQUESTS = Counter(
    "engage_http_requests_total", "HTTP requests, by path and status.", ["path", "status"]
)


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
    GRAPHQL_OPERATIONS.labels(name, kind).inc()
    GRAPHQL_LATENCY.labels(name, kind).observe(seconds)
    for error in errors:
        GRAPHQL_ERRORS.labels(name, _error_code(error)).inc()
