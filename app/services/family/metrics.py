"""The family domain's Prometheus metrics: ride checks and refusals, holds, charges, migrations.

Ride answers are counted when given (the caller got them whatever the transaction did next);
migration outcomes when the job records them. Passport's own latency and errors are counted
by its client (`app.integrations.passport.metrics`).
"""

from __future__ import annotations

from prometheus_client import Counter

RIDE_CHECKS = Counter(
    "engage_family_ride_checks_total",
    "familyRideCheck answers, by outcome (available or refused) and whether a hold was asked.",
    ["outcome", "hold"],
)
RIDE_CHARGES = Counter("engage_family_ride_charges_total", "Rides charged to a family (new).")
HOLDS_ENDED = Counter(
    "engage_family_holds_ended_total", "Holds ended without a charge, by how.", ["how"]
)
MIGRATIONS = Counter(
    "engage_family_migrations_total",
    "Family migrations to passport, by the state they reached (RUNNING counts attempts).",
    ["state"],
)


def ride_checked(available: bool, *, held: bool) -> None:
    RIDE_CHECKS.labels("available" if available else "refused", "yes" if held else "no").inc()


def ride_charged() -> None:
    RIDE_CHARGES.inc()


def hold_released() -> None:
    HOLDS_ENDED.labels("released").inc()


def holds_expired(count: int) -> None:
    if count:
        HOLDS_ENDED.labels("expired").inc(count)


def migration_reached(state: str) -> None:
    MIGRATIONS.labels(state).inc()
