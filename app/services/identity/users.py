"""Accounts: registration, profile, deletion, and the admin's block/unblock.

Concurrency decisions:
- Registration: the password is hashed first (off the event loop, before any statement);
  the email and phone are unique indexes, and the insert runs in a savepoint, so of
  concurrent registrations of one contact one wins and the others get EMAIL_TAKEN /
  PHONE_TAKEN, as a later registration would.
- Block/unblock locks the user's row (`FOR UPDATE`) on PostgreSQL, so concurrent calls see
  each other's status and only a real change is audited and revokes tokens. On SQLite that
  clause is a no-op; the unit of work holds the write lock from its first statement
  (`app.db`), which serialises them the same way.
- Account deletion verifies the password inside the unit of work (rare: it may hold the
  connection for one hash).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import hash_password, verify_password
from app.domains import domain_modules
from app.models.base import utcnow
from app.models.identity import AuditLog, RefreshToken, Role, User, UserStatus
from app.services.errors import DomainError
from app.services.validation import (
    InvalidValue,
    check_password,
    check_timezone,
    normalize_email,
    normalize_locale,
    normalize_phone,
)
from app.settings import Settings


class AccountErrorCode(enum.Enum):
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_PHONE = "INVALID_PHONE"
    CONTACT_REQUIRED = "CONTACT_REQUIRED"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    PASSWORD_TOO_LONG = "PASSWORD_TOO_LONG"
    INVALID_LOCALE = "INVALID_LOCALE"
    INVALID_TIMEZONE = "INVALID_TIMEZONE"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    PHONE_TAKEN = "PHONE_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_BLOCKED = "ACCOUNT_BLOCKED"
    RATE_LIMITED = "RATE_LIMITED"
    INVALID_REFRESH_TOKEN = "INVALID_REFRESH_TOKEN"
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"
    NOT_FOUND = "NOT_FOUND"
    CANNOT_CHANGE_SELF = "CANNOT_CHANGE_SELF"
    REASON_TOO_LONG = "REASON_TOO_LONG"


def invalid(exc: InvalidValue, field: str) -> DomainError:
    return DomainError(AccountErrorCode[exc.reason], str(exc), field)


@dataclass(frozen=True, slots=True)
class Registration:
    email: str | None
    phone: str | None
    password: str
    locale: str = "en"
    timezone: str = "UTC"


def _validated(data: Registration, settings: Settings) -> dict[str, str | None]:
    if not data.email and not data.phone:
        raise DomainError(
            AccountErrorCode.CONTACT_REQUIRED, "Give an email address or a phone number.", "email"
        )
    checks = {
        "email": lambda: normalize_email(data.email) if data.email else None,
        "phone": lambda: normalize_phone(data.phone) if data.phone else None,
        "password": lambda: check_password(
            data.password, settings.password_min_length, settings.password_max_length
        ),
        "locale": lambda: normalize_locale(data.locale),
        "timezone": lambda: check_timezone(data.timezone),
    }
    values: dict[str, str | None] = {}
    for field, check in checks.items():
        try:
            values[field] = check()
        except InvalidValue as exc:
            raise invalid(exc, field) from exc
    return values


async def register(session: AsyncSession, data: Registration, settings: Settings) -> User:
    values = _validated(data, settings)
    # Hashed before the first statement: the unit of work (and on SQLite the write lock)
    # isn't held while the hashing pool works or is busy.
    password_hash = await hash_password(data.password, settings)
    await _ensure_contact_free(session, values["email"], values["phone"])
    user = User(
        email=values["email"],
        phone=values["phone"],
        password_hash=password_hash,
        locale=values["locale"],
        timezone=values["timezone"],
        roles=[Role.USER.value],
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the unique index
        await _ensure_contact_free(session, values["email"], values["phone"])
        raise DomainError(
            AccountErrorCode.EMAIL_TAKEN, "An account with this email already exists.", "email"
        ) from exc
    return user


async def _ensure_contact_free(session: AsyncSession, email: str | None, phone: str | None) -> None:
    if email and await session.scalar(select(User.id).where(User.email == email)):
        raise DomainError(
            AccountErrorCode.EMAIL_TAKEN, "An account with this email already exists.", "email"
        )
    if phone and await session.scalar(select(User.id).where(User.phone == phone)):
        raise DomainError(
            AccountErrorCode.PHONE_TAKEN, "An account with this phone already exists.", "phone"
        )


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def revoke_all_refresh_tokens(session: AsyncSession, user_id: uuid.UUID, reason: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def delete_own_account(
    session: AsyncSession, user: User, password: str, settings: Settings
) -> None:
    """`accountDelete`: the caller confirms with the current password (an account with no
    password, provisioned by an external issuer, has nothing to confirm)."""
    if user.password_hash is not None and not await verify_password(
        user.password_hash, password, settings
    ):
        raise DomainError(AccountErrorCode.INVALID_CREDENTIALS, "Wrong password.", "password")
    await delete_account(session, user)


async def delete_account(session: AsyncSession, user: User) -> None:
    """Soft delete: the row stays for referential integrity, the personal data goes.

    Every domain then detaches or anonymises its own personal data (SPEC §0) in its
    `app/services/<domain>/privacy.py`: `forget_user(session, user_id, now=...)`, in the same
    transaction. Access tokens stop working because the principal is loaded with its status.
    """
    now = utcnow()
    user.status = UserStatus.DELETED
    user.deleted_at = now
    user.email = None
    user.phone = None
    user.password_hash = None
    user.external_subject = None
    await revoke_all_refresh_tokens(session, user.id, "ACCOUNT_DELETED")
    for privacy in domain_modules("app.services", "privacy"):
        await privacy.forget_user(session, user.id, now=now)


async def set_blocked(
    session: AsyncSession,
    actor: str,
    actor_user_id: uuid.UUID | None,
    user_id: uuid.UUID,
    blocked: bool,
    reason: str,
) -> User:
    user = await session.get(User, user_id, with_for_update=True)
    if user is None or user.status == UserStatus.DELETED:
        raise DomainError(AccountErrorCode.NOT_FOUND, "No such user.", "userId")
    if user.id == actor_user_id:
        raise DomainError(
            AccountErrorCode.CANNOT_CHANGE_SELF, "Admins can't block themselves.", "userId"
        )
    target_status = UserStatus.BLOCKED if blocked else UserStatus.ACTIVE
    if user.status != target_status:
        user.status = target_status
        if blocked:
            await revoke_all_refresh_tokens(session, user.id, "BLOCKED")
        session.add(
            AuditLog(
                actor=actor,
                action="user.block" if blocked else "user.unblock",
                target=f"user:{user.id}",
                reason=reason,
            )
        )
    return user


async def create_admin(
    session: AsyncSession, email: str, password: str, settings: Settings
) -> User:
    user = await register(
        session, Registration(email=email, phone=None, password=password), settings
    )
    user.roles = [Role.USER.value, Role.ADMIN.value]
    return user
