"""The `idempotencyKey` convention for mutations that create things.

The first call with a key stores a record (caller, operation, key, a hash of the input and a
reference to what was created) in the same transaction as the effect. A retry with the same
key finds the record and gets the first result back; a retry whose input differs is refused.
Concurrent first calls race on the unique index: the loser waits for the winner's commit and
then returns the winner's result.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import IdempotencyRecord
from app.services.errors import DomainError

MAX_KEY_LENGTH = 100


class IdempotencyErrorCode(enum.Enum):
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


def fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def run_once(
    session: AsyncSession,
    *,
    principal: str,
    operation: str,
    key: str | None,
    request: dict[str, Any],
    create: Callable[[], Awaitable[str]],
    error_code: Callable[[IdempotencyErrorCode], enum.Enum] = lambda code: code,
) -> tuple[str, bool]:
    """Run `create` (returning a reference to what it made) at most once per key.

    Returns the reference and whether it was replayed from an earlier call.
    """
    if key is None:
        return await create(), False
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise DomainError(
            error_code(IdempotencyErrorCode.INVALID_IDEMPOTENCY_KEY),
            f"idempotencyKey must be 1-{MAX_KEY_LENGTH} printable characters.",
            "idempotencyKey",
        )
    request_hash = fingerprint(request)
    existing = await _find(session, principal, operation, key)
    if existing is not None:
        return _replay(existing, request_hash, error_code), True
    try:
        async with session.begin_nested():
            reference = await create()
            session.add(
                IdempotencyRecord(
                    principal=principal,
                    operation=operation,
                    key=key,
                    request_hash=request_hash,
                    result_ref=reference,
                )
            )
            await session.flush()
    except (IntegrityError, DomainError):
        # A concurrent first call with this key may have committed while we waited on a
        # unique index (ours, or one the effect touches): if so, its result is the answer.
        existing = await _find(session, principal, operation, key)
        if existing is None:
            raise
        return _replay(existing, request_hash, error_code), True
    return reference, False


async def _find(
    session: AsyncSession, principal: str, operation: str, key: str
) -> IdempotencyRecord | None:
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.operation == operation,
            IdempotencyRecord.key == key,
        )
    )


def _replay(
    record: IdempotencyRecord,
    request_hash: str,
    error_code: Callable[[IdempotencyErrorCode], enum.Enum],
) -> str:
    if record.request_hash != request_hash:
        raise DomainError(
            error_code(IdempotencyErrorCode.IDEMPOTENCY_KEY_REUSED),
            "This idempotencyKey was used for a different request.",
            "idempotencyKey",
        )
    return record.result_ref
