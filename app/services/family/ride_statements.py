"""The ride calls' prebuilt statements (`app.lean.HotStatement`), built once at import.

`HOLD_PG` is the held check's one statement on PostgreSQL: a CTE that sums the member's
usage (`app.services.family.usage`) and inserts the hold only if the fare fits, answering the
sums and the new hold's id (null when it didn't fit or the order holds already). SQLite runs
`usage.USAGE` and `HOLD_SQLITE` instead. Update statements bind `b_`-prefixed parameters
(a HotStatement's UPDATE can't share a name with a column it sets).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, String, Uuid, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.lean import HotStatement
from app.models.family import FamilyCharge, FamilyHold, HoldStatus
from app.services.family.usage import ACCOUNT, USER, at, charged_sum, held_sum

HOLD_COLUMNS = ("id", "account_id", "user_id", "order_id", "amount_minor", "currency",
                 "status", "expires_at", "created_at", "updated_at")  # fmt: skip


def _hold_params() -> list[Any]:
    return [
        bindparam("hold_id", type_=Uuid()),
        ACCOUNT,
        USER,
        bindparam("order_id", type_=String()),
        bindparam("amount", type_=BigInteger()),
        bindparam("currency", type_=String()),
        bindparam("status", type_=FamilyHold.__table__.c.status.type),
        at("expires_at"),
        at("now"),
        at("now"),
    ]


def _hold_in_one() -> HotStatement:
    """PostgreSQL: sum the usage and insert the hold if the fare fits, in one statement."""
    usage = select(charged_sum().label("charged"), held_sum().label("held")).cte("usage")
    fits = usage.c.charged + usage.c.held + bindparam("amount", type_=BigInteger()) <= bindparam(
        "limit", type_=BigInteger()
    )
    inserted = (
        postgresql.insert(FamilyHold)
        .from_select(list(HOLD_COLUMNS), select(*_hold_params()).select_from(usage).where(fits))
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(FamilyHold.id)
        .cte("inserted")
    )
    return HotStatement(
        select(
            usage.c.charged,
            usage.c.held,
            select(inserted.c.id).scalar_subquery().label("hold_id"),
        ).select_from(usage)
    )


HOLD_PG = _hold_in_one()
HOLD_SQLITE = HotStatement(
    sqlite.insert(FamilyHold)
    .values(dict(zip(HOLD_COLUMNS, _hold_params(), strict=True)))
    .on_conflict_do_nothing(index_elements=["order_id"])
    .returning(FamilyHold.id)
)
HOLD_BY_ORDER = HotStatement(
    select(
        FamilyHold.id,
        FamilyHold.account_id,
        FamilyHold.user_id,
        FamilyHold.amount_minor,
        FamilyHold.currency,
        FamilyHold.status,
        FamilyHold.expires_at,
    ).where(FamilyHold.order_id == bindparam("order_id"))
)


def _charge_insert(insert: Any) -> HotStatement:
    return HotStatement(
        insert(FamilyCharge)
        .values(
            id=bindparam("charge_id", type_=Uuid()),
            account_id=ACCOUNT,
            user_id=USER,
            order_id=bindparam("order_id", type_=String()),
            amount_minor=bindparam("amount", type_=BigInteger()),
            currency=bindparam("currency", type_=String()),
            charged_at=at("now"),
            created_at=at("now"),
            updated_at=at("now"),
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(FamilyCharge.id)
    )


CHARGE = {"postgresql": _charge_insert(postgresql.insert), "sqlite": _charge_insert(sqlite.insert)}
CHARGE_BY_ORDER = HotStatement(
    select(
        FamilyCharge.account_id,
        FamilyCharge.user_id,
        FamilyCharge.amount_minor,
        FamilyCharge.currency,
    ).where(FamilyCharge.order_id == bindparam("order_id"))
)


def _hold_update(target: HoldStatus) -> HotStatement:
    return HotStatement(
        update(FamilyHold)
        .where(
            FamilyHold.order_id == bindparam("b_order_id", type_=String()),
            FamilyHold.account_id == bindparam("b_account_id", type_=Uuid()),
            FamilyHold.status == HoldStatus.HELD,
        )
        .values(status=target, updated_at=at("b_now"))
        .returning(FamilyHold.id)
    )


CHARGE_HOLD = _hold_update(HoldStatus.CHARGED)
RELEASE_HOLD = _hold_update(HoldStatus.RELEASED)
EXPIRE_HOLDS = HotStatement(
    update(FamilyHold)
    .where(FamilyHold.status == HoldStatus.HELD, FamilyHold.expires_at <= at("b_now"))
    .values(status=HoldStatus.EXPIRED, updated_at=at("b_now"))
)
