"""Rejected promocode attempts: the typed rejection, the attempt log, per-user/IP limits.

Every refusal is logged with its true reason; the caller sees its client code
(`errors.client_code`), and a caller with too many recent refusals (per user or per IP) is
refused RATE_LIMITED first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.lean import HotStatement
from app.models.base import utcnow
from app.models.identity import UserStatus
from app.models.promocodes import AttemptOperation, PromocodeAttempt, Rejection
from app.ratelimit import RateLimiter
from app.services.errors import DomainError
from app.services.promocodes.eligibility import Buyer
from app.services.promocodes.errors import PurchaseErrorCode, client_code
from app.services.promocodes.generator import MAX_CODE_LENGTH
from app.settings import Settings


class PromocodeRejected(DomainError):
    """A code refused for a user: `reason` is the truth, `code` the client code it is told."""

    def __init__(
        self,
        reason: Rejection,
        promocode_id: uuid.UUID | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        shown = client_code(reason)
        super().__init__(shown, _MESSAGES[shown], "code")
        self.reason = reason
        self.promocode_id = promocode_id
        self.retry_after = retry_after  # seconds, for RATE_LIMITED


# Keyed by the client code, so a message can't tell more than the code does.
_MESSAGES = {
    PurchaseErrorCode.NOT_FOUND: "No such promocode.",
    PurchaseErrorCode.INACTIVE: "This promocode is no longer active.",
    PurchaseErrorCode.NOT_STARTED: "This promocode is not valid yet.",
    PurchaseErrorCode.EXPIRED: "This promocode has expired.",
    PurchaseErrorCode.EXHAUSTED: "This promocode has been used up.",
    PurchaseErrorCode.ALREADY_USED_BY_USER: "You have already used this promocode.",
    PurchaseErrorCode.PLAN_NOT_ELIGIBLE: "This promocode does not apply to this plan.",
    PurchaseErrorCode.SUBSCRIBER_NOT_ELIGIBLE: (
        "This promocode is not available for your subscription."
    ),
    PurchaseErrorCode.USER_NOT_ACTIVE: "Your account can't use promocodes.",
    PurchaseErrorCode.RATE_LIMITED: "Too many rejected promocodes: try again later.",
}


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The calling user as the request's principal knows them. Resolving a principal refuses
    every account that isn't ACTIVE (`app.services.identity.principals`), so the API's
    callers need no second read of their row; services called with a `User` row (admin
    apply, tests) check its status as it is stored."""

    id: uuid.UUID
    status: UserStatus = UserStatus.ACTIVE


@dataclass(frozen=True)
class Caller:
    """Who is asking, for attempt logs and rate limits: a `User` row or a `SignedInUser`."""

    user: Buyer
    ip: str | None = None


class RejectionLimits:
    """Counts rejected attempts per user and per IP; refuses callers over the limit."""

    def __init__(self, limiter: RateLimiter, settings: Settings) -> None:
        self.limiter = limiter
        self.settings = settings

    def _keys(self, caller: Caller) -> list[tuple[str, int]]:
        keys = [(f"promocode:user:{caller.user.id}", self.settings.promocode_max_rejections)]
        if caller.ip:
            keys.append((f"promocode:ip:{caller.ip}", self.settings.promocode_ip_max_rejections))
        return keys

    async def blocked(self, caller: Caller) -> int:
        """Seconds until the caller may try again; 0 when not blocked."""
        for key, limit in self._keys(caller):
            decision = await self.limiter.peek(key, limit)
            if not decision.allowed:
                return max(1, decision.retry_after)
        return 0

    async def count_rejection(self, caller: Caller) -> None:
        window = self.settings.promocode_rejection_window_seconds
        for key, limit in self._keys(caller):
            await self.limiter.hit(key, limit, window)


def _loggable(code: str) -> str:
    """What was entered, as text any database stores (PostgreSQL refuses NUL characters)."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in code.strip()[:MAX_CODE_LENGTH])


_LOG_ATTEMPT = HotStatement(
    insert(PromocodeAttempt).values(
        id=bindparam("id"),
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
        user_id=bindparam("user_id"),
        promocode_id=bindparam("promocode_id"),
        plan_id=bindparam("plan_id"),
        code_entered=bindparam("code_entered"),
        operation=bindparam("operation"),
        reason=bindparam("reason"),
        ip=bindparam("ip"),
    )
)


async def record_attempt(
    session: AsyncSession,
    *,
    caller: Caller,
    code: str,
    plan_id: uuid.UUID | None,
    operation: AttemptOperation,
    rejection: PromocodeRejected,
) -> None:
    """Log a refusal with its true reason: one INSERT, sent now (the lean path)."""
    await _LOG_ATTEMPT.execute(
        session,
        id=uuid.uuid4(),
        now=utcnow(),
        user_id=caller.user.id,
        promocode_id=rejection.promocode_id,
        plan_id=plan_id,
        code_entered=_loggable(code),
        operation=operation,
        reason=rejection.reason,
        ip=caller.ip,
    )
