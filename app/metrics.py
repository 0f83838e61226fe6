"""Prometheus metrics: the API, the outbox and the job workers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
GC_PAUSE = Histogram(
    "engage_gc_pause_seconds",
    "Cyclic garbage collections, by generation, and how long each stopped the process.",
    ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
GC_FROZEN_OBJECTS = Gauge(
    "engage_gc_frozen_objects", "Objects moved out of the GC's reach after start-up (gc.freeze)."
)
HTTP_REQUESTS = Counter(
    "engage_http_requests_total", "HTTP requests, by path and status.", ["path", "status"]
)


OUTBOX_WRITTEN = Counter(
    "engage_outbox_written_total", "Jobs written to the outbox, by actor.", ["actor"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "engage_outbox_publish_failures_total",
    "Outbox rows whose publish after commit failed (left for the sweeper).",
)
OUTBOX_SWEPT = Counter(
    "engage_outbox_swept_total", "Outbox rows published by the sweeper instead of the relay."
)
OUTBOX_REDELIVERED = Counter(
    "engage_outbox_redelivered_total",
    "Outbox rows published again because the broker accepted them and no worker finished them.",
)
OUTBOX_BACKLOG = Gauge("engage_outbox_backlog", "Outbox rows committed but not yet published.")
OUTBOX_OLDEST_AGE = Gauge(
    "engage_outbox_oldest_unsent_age_seconds", "Age of the oldest unsent outbox row."
)
JOB_LABELS = ["actor"]
JOBS_ENQUEUED = Counter("engage_jobs_enqueued_total", "Messages sent to the broker.", JOB_LABELS)
JOBS_PROCESSED = Counter(
    "engage_jobs_processed_total", "Messages an actor processed successfully.", JOB_LABELS
)
JOBS_FAILED = Counter("engage_jobs_failed_total", "Actor runs that raised.", JOB_LABELS)
JOBS_RETRIED = Counter("engage_jobs_retried_total", "Failed runs scheduled for retry.", JOB_LABELS)
JOBS_DEAD_LETTERED = Counter(
    "engage_jobs_dead_lettered_total", "Messages that exhausted their retries.", JOB_LABELS
)
JOB_DURATION = Histogram(
    "engage_job_seconds",
    "Time an actor spent on one message.",
    JOB_LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SCHEDULER_TICKS = Counter(
    "engage_scheduler_ticks_total", "Periodic jobs enqueued by this scheduler.", ["schedule"]
)

PUBSUB_PUBLISH_FAILURES = Counter(
    "engage_pubsub_publish_failures_total",
    "Pub/sub messages that could not be published (lost: pub/sub delivery is best effort).",
)
PUBSUB_DROPPED = Counter(
    "engage_pubsub_dropped_total",
    "Pub/sub messages dropped because a subscriber fell behind (its oldest are dropped).",
)
SUBSCRIPTIONS_ACTIVE = Gauge(
    "engage_subscriptions_active",
    "GraphQL subscriptions streaming in this process, by subscription field.",
    ["subscription"],
)
