"""The orders domain's error codes (`orderRecord`, `orderRecordBatch`, the order facts)."""

from __future__ import annotations

import enum


class OrderErrorCode(enum.Enum):
    INVALID_ORDER_ID = "INVALID_ORDER_ID"
    UNKNOWN_USER = "UNKNOWN_USER"
    INVALID_ORDER = "INVALID_ORDER"  # facts that can't be true (price, times, labels)
    INVALID_TIMEZONE = "INVALID_TIMEZONE"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_DATA = "INVALID_DATA"
    ORDER_CONFLICT = "ORDER_CONFLICT"
    TOO_MANY_ORDERS = "TOO_MANY_ORDERS"  # orderRecordBatch: more than MAX_BATCH orders
