"""The purchase lifecycle and the promocode usage ledger, one module per step:

- `quotes`: plans on sale, prices, `quote` (a dry run), the codes a user may use;
- `reservation`: `create_purchase` (`purchaseCreate`), the lean hot path: the use reserved,
  the per-user limit and the idempotency record in two statements;
- `confirmation`: `confirm_purchase` / `fail_purchase` (the payment result);
- `sweeping`: `release_stale_reservations` (reservations past their TTL).

A use is RESERVED until the payment result arrives: CONFIRMED, or RELEASED (payment failed,
reservation timed out, admin) with `uses - 1`. `Promocode.uses` grows only through the
conditional `UPDATE … SET uses = uses + 1 WHERE max_uses IS NULL OR uses < max_uses`, so
under any concurrency a code with N uses is used at most N times, and at most
`max_uses_per_user` times per user; each module's docstring gives its locking decisions.

This module re-exports the steps' entry points for the callers that name them here.
"""

from app.services.promocodes.confirmation import confirm_purchase, fail_purchase
from app.services.promocodes.quotes import (
    Quote,
    available_promocodes,
    get_plan,
    plan_on_sale,
    price,
    quote,
)
from app.services.promocodes.reservation import PlanView, PurchaseView, create_purchase
from app.services.promocodes.sweeping import release_stale_reservations

__all__ = [
    "PlanView",
    "PurchaseView",
    "Quote",
    "available_promocodes",
    "confirm_purchase",
    "create_purchase",
    "fail_purchase",
    "get_plan",
    "plan_on_sale",
    "price",
    "quote",
    "release_stale_reservations",
]
