"""The one exception the passport client raises, with a code the caller can branch on.

`transient` says whether trying again later can help: the service was down, slow or shed by
the circuit breaker. Every other code is an answer (the request is wrong for the current
state, or the configuration is) and the same request gets the same answer.
"""

from __future__ import annotations

import enum


class PassportErrorCode(enum.StrEnum):
    UNAVAILABLE = "UNAVAILABLE"  # 5xx or a transport error, after the retries
    TIMEOUT = "TIMEOUT"  # a try took longer than the client's timeout, after the retries
    CIRCUIT_OPEN = "CIRCUIT_OPEN"  # failed fast: the breaker is open, nothing was sent
    UNAUTHORIZED = "UNAUTHORIZED"  # 401/403: PASSPORT_TOKEN is wrong
    NOT_FOUND = "NOT_FOUND"  # the account, family or member the call needs does not exist
    ALREADY_IN_FAMILY = "ALREADY_IN_FAMILY"  # the uid is in another family (see family_id)
    FAMILY_FULL = "FAMILY_FULL"  # the family has its 8 members
    CANNOT_REMOVE_ADMIN = "CANNOT_REMOVE_ADMIN"  # the admin can only delete the family
    BAD_RESPONSE = "BAD_RESPONSE"  # an answer outside the contract (status, JSON, fields)


TRANSIENT_CODES = frozenset(
    {PassportErrorCode.UNAVAILABLE, PassportErrorCode.TIMEOUT, PassportErrorCode.CIRCUIT_OPEN}
)


class PassportError(Exception):
    def __init__(
        self,
        code: PassportErrorCode,
        message: str,
        *,
        status: int | None = None,
        family_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status  # the HTTP status of the answer, None when there was none
        self.family_id = family_id  # ALREADY_IN_FAMILY: the family the uid is in

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES

    def __repr__(self) -> str:
        return f"PassportError({self.code!s}, {self.message!r}, status={self.status})"
