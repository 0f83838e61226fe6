"""An admin's bulk generation: a batch of random codes with one offer, audited once.

The request (count, length, prefix) and the offer are checked before anything is written;
the codes are inserted in a savepoint, so a late refusal leaves none behind. Never commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import AuditLog
from app.services.errors import DomainError
from app.services.promocodes import generator
from app.services.promocodes.codes import (
    PromocodeInput,
    check_reason,
    clean_promocode_input,
    promocode_columns,
    validate_promocode_input,
)
from app.services.promocodes.errors import PromocodeErrorCode

MAX_GENERATE_COUNT = 100_000


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """How many codes and their shape: `prefix` + `length` symbols of the safe charset."""

    count: int
    length: int
    prefix: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: uuid.UUID
    codes: list[str]


def _refusal(message: str, field: str) -> DomainError:
    return DomainError(PromocodeErrorCode.INVALID_GENERATE_REQUEST, message, field)


def check_request(request: BatchRequest) -> tuple[str, str]:
    """The normalised (reason, prefix); refuses what the generator can't do, naming the field.

    Touches no database, so callers may run it before they build the offer.
    """
    reason = check_reason(request.reason)
    if not 1 <= request.count <= MAX_GENERATE_COUNT:
        raise _refusal(f"count is 1-{MAX_GENERATE_COUNT}.", "count")
    if not 1 <= request.length <= generator.MAX_CODE_LENGTH:
        raise _refusal(f"length is 1-{generator.MAX_CODE_LENGTH}.", "length")
    prefix = generator.normalize_code(request.prefix)
    try:
        generator.generate(0, length=request.length, prefix=prefix)  # checks the prefix only
    except ValueError as exc:
        raise _refusal(f"Invalid prefix: {exc}.", "prefix") from exc
    if request.count * 2 > generator.capacity(request.length, generator.SAFE_CHARSET):
        raise _refusal(
            f"{request.count} codes of {request.length} symbols would fill more than half of "
            "the possible codes: use a longer length or fewer codes.",
            "count",
        )
    return reason, prefix


async def _template(session: AsyncSession, offer: PromocodeInput, actor: str) -> dict[str, Any]:
    """The columns every code of the batch copies, and its eligible plans."""
    offer = clean_promocode_input(offer, check_code_text=False)
    plans = await validate_promocode_input(session, offer, check_code_text=False)
    columns = promocode_columns(offer)
    template = {k: v for k, v in columns.items() if k in generator.COPIED_COLUMNS}
    return template | {"created_by": actor, generator.PLAN_IDS: [p.id for p in plans]}


async def generate_batch(
    session: AsyncSession, request: BatchRequest, offer: PromocodeInput, *, actor: str
) -> Batch:
    """Insert `request.count` new codes giving `offer` (its `code` is ignored); audited."""
    reason, prefix = check_request(request)
    template = await _template(session, offer, actor)
    batch_id = uuid.uuid4()
    try:
        async with session.begin_nested():  # a late refusal leaves no codes behind
            codes = await generator.insert_generated(
                session,
                template=template,
                count=request.count,
                length=request.length,
                prefix=prefix,
                batch_id=batch_id,
            )
    except ValueError as exc:
        raise _refusal(str(exc), "count") from exc
    session.add(
        AuditLog(
            actor=actor,
            action="promocode.generate",
            target=f"promocode_batch:{batch_id}",
            reason=f"{reason} ({len(codes)} codes)"[:500].strip(),
        )
    )
    return Batch(batch_id, codes)
