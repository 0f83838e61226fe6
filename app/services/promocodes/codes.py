"""Admin side of promocodes: plans, and creating, updating, deactivating and finding codes.

Every check runs before anything is written, so a refused request changes nothing; every
admin action writes an `AuditLog` row (actor, action, target, reason). Services never commit.
The inputs and pure checks live in `rules.py` (re-exported here), the error codes in
`errors.py`; grants in `grants.py`; bulk generation in `batches.py`; stats and the admin's lists
(attempts, purchases) in `stats.py`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import AuditLog
from app.models.promocodes import Plan, Promocode, PromocodeKind, promocode_plans
from app.services.errors import DomainError
from app.services.promocodes.errors import PromocodeErrorCode as Code
from app.services.promocodes.rules import (
    CURRENCIES,
    MAX_MINOR,
    UNSET,
    PromocodeInput,
    PromocodeUpdate,
    Unset,
    check_code,
    check_currency,
    check_description,
    check_limits,
    check_period,
    check_reason,
    clean_promocode_input,
    unique_plan_ids,
)

__all__ = [
    "CURRENCIES",
    "UNSET",
    "PromocodeInput",
    "PromocodeUpdate",
    "Unset",
    "check_code",
    "check_reason",
    "clean_promocode_input",
    "create_plan",
    "create_promocode",
    "deactivate_promocode",
    "get_promocode",
    "get_promocode_by_code",
    "list_plans",
    "plan_ids_of",
    "promocode_columns",
    "update_promocode",
    "validate_promocode_input",
]

MAX_PLAN_SLUG_LENGTH = 50
MAX_PLAN_NAME_LENGTH = 100
MAX_PLAN_DURATION_DAYS = 3660
_SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")

# --- checks against the database ---------------------------------------------------------


async def _load_plans(session: AsyncSession, plan_ids: Sequence[uuid.UUID]) -> list[Plan]:
    if not plan_ids:
        return []
    found = {p.id: p for p in await session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))}
    if missing := [str(pid) for pid in plan_ids if pid not in found]:
        raise DomainError(Code.UNKNOWN_PLAN, f"Unknown plans: {', '.join(missing[:10])}", "planIds")
    if inactive := [found[pid].slug for pid in plan_ids if not found[pid].active]:
        raise DomainError(
            Code.PLAN_NOT_ELIGIBLE, f"Plans not on sale: {', '.join(inactive[:10])}", "planIds"
        )
    return [found[pid] for pid in plan_ids]


async def _check_against_plans(
    session: AsyncSession, kind: PromocodeKind, value: int, currency: str | None, plans: list[Plan]
) -> None:
    """A money code is priced in its plans' currency, and a fixed price is no dearer than them.

    With no plans listed the code applies to every plan priced in its currency.
    """
    if currency is None:
        return
    if wrong := [p.slug for p in plans if p.currency != currency]:
        raise DomainError(
            Code.INVALID_CURRENCY,
            f"Plans priced in another currency: {', '.join(wrong[:10])}",
            "currency",
        )
    priced = plans or list(
        await session.scalars(select(Plan).where(Plan.currency == currency, Plan.active))
    )
    if not priced:
        raise DomainError(
            Code.INVALID_CURRENCY, f"No plan on sale is priced in {currency}.", "currency"
        )
    if kind is PromocodeKind.FIXED_PRICE and (
        dearer := [p.slug for p in priced if value > p.price_minor]
    ):
        raise DomainError(
            Code.INVALID_VALUE,
            f"The fixed price is above the price of: {', '.join(dearer[:10])}",
            "value",
        )


async def _ensure_code_free(session: AsyncSession, code: str) -> None:
    if await session.scalar(select(Promocode.id).where(Promocode.code == code)):
        raise DomainError(Code.CODE_TAKEN, "This code exists already.", "code")


async def validate_promocode_input(
    session: AsyncSession, data: PromocodeInput, *, check_code_text: bool = True
) -> list[Plan]:
    """Validate a new code (or, with `check_code_text=False`, a generator's template).

    Returns the plans it is limited to (empty = every plan in its currency). Raises the
    first DomainError found; reads the database but writes nothing.
    """
    data = clean_promocode_input(data, check_code_text=check_code_text)
    plans = await _load_plans(session, data.plan_ids)
    await _check_against_plans(session, data.kind, data.value, data.currency, plans)
    if check_code_text:
        await _ensure_code_free(session, data.code)
    return plans


# --- codes -------------------------------------------------------------------------------


async def create_promocode(
    session: AsyncSession, data: PromocodeInput, *, actor: str, reason: str = ""
) -> Promocode:
    reason = check_reason(reason)
    data = clean_promocode_input(data)
    plans = await validate_promocode_input(session, data)
    promocode = Promocode(**promocode_columns(data), created_by=actor)
    try:
        async with session.begin_nested():
            session.add(promocode)
            await session.flush()
    except IntegrityError as exc:  # a concurrent create won the unique index
        raise DomainError(Code.CODE_TAKEN, "This code exists already.", "code") from exc
    await _set_plans(session, promocode.id, [p.id for p in plans])
    _audit(session, actor, "promocode.create", promocode.id, reason)
    return promocode


def promocode_columns(data: PromocodeInput) -> dict[str, Any]:
    return {
        "code": data.code,
        "kind": data.kind,
        "value": data.value,
        "currency": data.currency,
        "description": data.description,
        "valid_from": data.valid_from,
        "valid_until": data.valid_until,
        "max_uses": data.max_uses,
        "max_uses_per_user": data.max_uses_per_user,
        "audience": data.audience,
        "eligibility": data.eligibility,
        "trial_days": data.trial_days,
        "discounted_cycles": data.discounted_cycles,
        "active": data.active,
    }


async def get_promocode(
    session: AsyncSession, promocode_id: uuid.UUID, *, lock: bool = False
) -> Promocode:
    promocode = await session.get(Promocode, promocode_id, with_for_update=lock)
    if promocode is None:
        raise DomainError(Code.NOT_FOUND, "No such promocode.", "promocodeId")
    return promocode


async def get_promocode_by_code(session: AsyncSession, code: str) -> Promocode | None:
    """The code however it is typed (case, surrounding spaces), or None."""
    try:
        normalized = check_code(code)
    except DomainError:
        return None
    return await session.scalar(select(Promocode).where(Promocode.code == normalized))


async def plan_ids_of(
    session: AsyncSession, promocode_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The plans each code is limited to (an empty list = every plan)."""
    rows = await session.execute(
        select(promocode_plans.c.promocode_id, promocode_plans.c.plan_id).where(
            promocode_plans.c.promocode_id.in_(promocode_ids)
        )
    )
    result: dict[uuid.UUID, list[uuid.UUID]] = {pid: [] for pid in promocode_ids}
    for promocode_id, plan_id in rows.all():
        result[promocode_id].append(plan_id)
    return result


async def _set_plans(
    session: AsyncSession, promocode_id: uuid.UUID, plan_ids: Sequence[uuid.UUID]
) -> None:
    await session.execute(
        delete(promocode_plans).where(promocode_plans.c.promocode_id == promocode_id)
    )
    if plan_ids:
        await session.execute(
            insert(promocode_plans),
            [{"promocode_id": promocode_id, "plan_id": pid} for pid in plan_ids],
        )


def _audit(
    session: AsyncSession, actor: str, action: str, promocode_id: uuid.UUID, reason: str
) -> None:
    session.add(
        AuditLog(actor=actor, action=action, target=f"promocode:{promocode_id}", reason=reason)
    )


async def update_promocode(
    session: AsyncSession,
    promocode_id: uuid.UUID,
    changes: PromocodeUpdate,
    *,
    actor: str,
    reason: str,
) -> Promocode:
    """Apply `changes` (see PromocodeUpdate for what may change); audited when anything does."""
    reason = check_reason(reason)
    promocode = await get_promocode(session, promocode_id, lock=True)
    values = _validated_changes(promocode, changes)
    plan_ids = await _validated_plan_change(session, promocode, changes.plan_ids)
    changed = {name: v for name, v in values.items() if getattr(promocode, name) != v}
    for name, value in changed.items():
        setattr(promocode, name, value)
    if plan_ids is not None:
        await _set_plans(session, promocode.id, plan_ids)
    if changed or plan_ids is not None:
        _audit(session, actor, "promocode.update", promocode.id, reason)
    return promocode


def _validated_changes(promocode: Promocode, changes: PromocodeUpdate) -> dict[str, Any]:
    """The column values after `changes`, checked as a whole (plans are checked apart)."""
    values: dict[str, Any] = {
        name: getattr(changes, name)
        for name in (
            "valid_from",
            "valid_until",
            "max_uses",
            "max_uses_per_user",
            "audience",
            "eligibility",
            "active",
        )
        if getattr(changes, name) is not UNSET
    }
    if not isinstance(changes.description, Unset):
        values["description"] = check_description(changes.description)
    merged = {name: values.get(name, getattr(promocode, name)) for name in _MERGED}
    check_period(
        merged["valid_from"],
        merged["valid_until"],
        until_is_new="valid_until" in values and values["valid_until"] != promocode.valid_until,
    )
    check_limits(merged["max_uses"], merged["max_uses_per_user"])
    if merged["max_uses"] is not None and merged["max_uses"] < promocode.uses:
        raise DomainError(
            Code.INVALID_LIMIT, f"{promocode.uses} uses are taken already.", "maxUses"
        )
    return values


_MERGED = ("valid_from", "valid_until", "max_uses", "max_uses_per_user")


async def _validated_plan_change(
    session: AsyncSession, promocode: Promocode, plan_ids: Sequence[uuid.UUID] | Unset
) -> list[uuid.UUID] | None:
    """The new plan list, or None when it stays as it is."""
    if isinstance(plan_ids, Unset):
        return None
    wanted = list(unique_plan_ids(plan_ids))
    current = (await plan_ids_of(session, [promocode.id]))[promocode.id]
    if set(wanted) == set(current):
        return None
    plans = await _load_plans(session, wanted)
    await _check_against_plans(session, promocode.kind, promocode.value, promocode.currency, plans)
    return wanted


async def deactivate_promocode(
    session: AsyncSession, promocode_id: uuid.UUID, *, actor: str, reason: str
) -> Promocode:
    """Stop new quotes and purchases with the code; idempotent (audited only when it changes).

    Reservations already taken run to their payment result or TTL as usual.
    """
    reason = check_reason(reason)
    promocode = await get_promocode(session, promocode_id, lock=True)
    if promocode.active:
        promocode.active = False
        _audit(session, actor, "promocode.deactivate", promocode.id, reason)
    return promocode


# --- plans -------------------------------------------------------------------------------


def _check_plan_fields(
    slug: str, name: str, price_minor: int, duration_days: int
) -> tuple[str, str]:
    slug = slug.strip().lower()
    if len(slug) > MAX_PLAN_SLUG_LENGTH or not _SLUG_PATTERN.fullmatch(slug):
        raise DomainError(
            Code.INVALID_SLUG,
            f"A slug is 1-{MAX_PLAN_SLUG_LENGTH} of a-z, 0-9 and '-', starting with a-z or 0-9.",
            "slug",
        )
    name = " ".join(name.split())
    if not name or len(name) > MAX_PLAN_NAME_LENGTH or not name.isprintable():
        raise DomainError(
            Code.INVALID_NAME,
            f"The name must be 1-{MAX_PLAN_NAME_LENGTH} printable characters.",
            "name",
        )
    if not 0 <= price_minor <= MAX_MINOR:
        raise DomainError(Code.INVALID_PRICE, f"The price is 0-{MAX_MINOR}.", "priceMinor")
    if not 1 <= duration_days <= MAX_PLAN_DURATION_DAYS:
        raise DomainError(
            Code.INVALID_DURATION,
            f"The duration is 1-{MAX_PLAN_DURATION_DAYS} days.",
            "durationDays",
        )
    return slug, name


async def create_plan(
    session: AsyncSession,
    slug: str,
    name: str,
    price_minor: int,
    currency: str,
    duration_days: int,
    *,
    actor: str,
    reason: str = "",
) -> Plan:
    reason = check_reason(reason)
    slug, name = _check_plan_fields(slug, name, price_minor, duration_days)
    currency = check_currency(currency)
    if await session.scalar(select(Plan.id).where(Plan.slug == slug)):
        raise DomainError(Code.SLUG_TAKEN, "A plan with this slug exists.", "slug")
    plan = Plan(
        slug=slug,
        name=name,
        price_minor=price_minor,
        currency=currency,
        duration_days=duration_days,
    )
    try:
        async with session.begin_nested():
            session.add(plan)
            await session.flush()
    except IntegrityError as exc:
        raise DomainError(Code.SLUG_TAKEN, "A plan with this slug exists.", "slug") from exc
    session.add(
        AuditLog(actor=actor, action="plan.create", target=f"plan:{plan.id}", reason=reason)
    )
    return plan


async def list_plans(session: AsyncSession, *, include_inactive: bool = False) -> list[Plan]:
    query = select(Plan).order_by(Plan.currency, Plan.price_minor, Plan.slug)
    if not include_inactive:
        query = query.where(Plan.active)
    return list(await session.scalars(query))
