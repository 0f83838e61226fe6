"""The `idempotencyKey` convention for mutations that create things.

The first call with a key stores a record (caller, operation, key, a hash of the input and a
reference to what was created) in the same transaction as the effect. A retry with the same
key finds the record and gets the first result back; a retry whose input differs is refused.
Concurrent first calls race on the unique index: the loser waits for the winner's commit and
then returns the winner's result.

`run_once` wraps any effect (in a savepoint). A hot path that writes its record in the same
statement as its effect (`promocodes.reservation`) uses the pieces: `check_key`,
`fingerprint`, `find_record` and `replay`, with the same rules and error codes.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import HotStatement
from app.models.identity import IdempotencyRecord
from app.services.errors import DomainError

MAX_KEY_LENGTH = 100


class IdempotencyErrorCode(enum.Enum):
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


ErrorCode = Callable[[IdempotencyErrorCode], enum.Enum]

_FIND_RECORD = HotStatement(
    select(IdempotencyRecord.request_hash, IdempotencyRecord.result_ref).where(
        IdempotencyRecord.principal == bindparam("principal"),
        IdempotencyRecord.operation == bindparam("operation"),
        IdempotencyRecord.key == bindparam("key"),
    )
)


def fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str, error_code: ErrorCode = lambda code: code) -> None:
    """Refuse a key that is empty, too long or not printable (INVALID_IDEMPOTENCY_KEY)."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise DomainError(
            error_code(IdempotencyErrorCode.INVALID_IDEMPOTENCY_KEY),
            f"idempotencyKey must be 1-{MAX_KEY_LENGTH} printable characters.",
            "idempotencyKey",
        )


async def find_record(
    session: AsyncSession, *, principal: str, operation: str, key: str
) -> tuple[str, str] | None:
    """The stored (request hash, result reference) of an earlier call with `key`, if any."""
    row = await _FIND_RECORD.one_or_none(session, principal=principal, operation=operation, key=key)
    return None if row is None else (row.request_hash, row.result_ref)


def replay(
    stored_hash: str, stored_ref: str, request_hash: str, error_code: ErrorCode = lambda c: c
) -> str:
    """The first call's result reference, or IDEMPOTENCY_KEY_REUSED for another request."""
    if stored_hash != request_hash:
        raise DomainError(
            error_code(IdempotencyErrorCode.IDEMPOTENCY_KEY_REUSED),
            "This idempotencyKey was used for a different request.",
            "idempotencyKey",
        )
    return stored_ref


async def run_once(
    session: AsyncSession,
    *,
    principal: str,
    operation: str,
    key: str | None,
    request: dict[str, Any],
    create: Callable[[], Awaitable[str]],
    error_code: ErrorCode = lambda code: code,
) -> tuple[str, bool]:
    """Run `create` (returning a reference to what it made) at most once per key.

    Returns the reference and whether it was replayed from an earlier call.
    """
    if key is None:
        return await create(), False
    check_key(key, error_code)
    request_hash = fingerprint(request)
    existing = await find_record(session, principal=principal, operation=operation, key=key)
    if existing is not None:
        return replay(*existing, request_hash, error_code), True
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
        existing = await find_record(session, principal=principal, operation=operation, key=key)
        if existing is None:
            raise
        return replay(*existing, request_hash, error_code), True
    return reference, False
