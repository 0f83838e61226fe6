"""The orders domain's Prometheus metrics.

The metric keeps its `engage_goal_…` name from when goals owned the order stream: dashboards
and alerts read it.
"""

from __future__ import annotations

from prometheus_client import Counter

ORDERS_RECORDED = Counter(
    "engage_goal_orders_recorded_total",
    "orderRecord calls, by outcome (NEW, DUPLICATE, STATUS_CHANGED, CONFLICT).",
    ["outcome"],
)
