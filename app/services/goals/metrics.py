"""The goals domain's Prometheus metrics (SPEC §1); `orderRecord`'s are the orders domain's."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

GOALS_ASSIGNED = Counter("engage_goals_assigned_total", "User goals assigned.")
GOALS_ACTIVATED = Counter("engage_goals_activated_total", "User goals that became ACTIVE.")
GOALS_COMPLETED = Counter("engage_goals_completed_total", "User goals that reached their target.")
GOALS_MISSED = Counter("engage_goals_missed_total", "User goals that expired unfinished.")
GOAL_BONUSES_GRANTED = Counter(
    "engage_goal_bonuses_granted_total", "Goal bonuses granted, by bonus type.", ["type"]
)
GOAL_ORDERS_PROCESSED = Counter(
    "engage_goal_orders_processed_total", "Orders processed, by ledger reason.", ["reason"]
)
GOAL_PROCESSING_LAG = Histogram(
    "engage_goal_processing_lag_seconds",
    "Seconds from an order's completion to its goal event (the ledger row).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
