"""The passport client's Prometheus metrics, in the default registry (as app/metrics.py's).

- `engage_passport_request_seconds{operation, outcome}`: one observation per logical call, the
  whole time including retries and backoff; outcome is "ok" or the final error code in lower
  case ("unavailable", "circuit_open", "not_found", ...). A 404 the method maps to None (no
  account, no family) or to "done" (deleting a deleted family) is an "ok" answer. Its
  `_count` is the number of calls by outcome.
- `engage_passport_errors_total{operation, code}` (the code in lower case too): every try
  that ended in an error, including the ones a retry then made good, and the fail-fast
  CIRCUIT_OPEN; so the errors the retries hide stay visible. A call that failed twice and
  then succeeded counts 2 here and one "ok" in the histogram.
- `engage_passport_circuit_open`: 1 while the circuit is not closed (open, or half-open
  waiting for its trial), 0 when closed. One client (and breaker) per process is assumed; a
  second one would share the gauge.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from app.integrations.passport.breaker import BreakerState
from app.integrations.passport.errors import PassportErrorCode

OPERATIONS = (
    "find_account",
    "family_of",
    "get_family",
    "create_family",
    "delete_family",
    "add_member",
    "remove_member",
    "leave_family",
)

REQUEST_SECONDS = Histogram(
    "engage_passport_request_seconds",
    "Passport calls by operation and outcome, seconds including retries.",
    ["operation", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
ERRORS = Counter(
    "engage_passport_errors_total",
    "Failed tries of passport calls (retried ones included), by operation and error code.",
    ["operation", "code"],
)
CIRCUIT_OPEN = Gauge(
    "engage_passport_circuit_open", "1 while the passport circuit breaker is not closed."
)


def observe(operation: str, code: PassportErrorCode | None, seconds: float) -> None:
    outcome = "ok" if code is None else code.lower()
    REQUEST_SECONDS.labels(operation, outcome).observe(seconds)


def failed_try(operation: str, code: PassportErrorCode) -> None:
    ERRORS.labels(operation, code.lower()).inc()


def breaker_changed(state: BreakerState) -> None:
    CIRCUIT_OPEN.set(0 if state is BreakerState.CLOSED else 1)
