"""Identity and access: users, groups, refresh tokens, service tokens."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin, UUIDPrimaryKey


class UserStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    DELETED = "DELETED"


class Role(enum.StrEnum):
    USER = "USER"
    ADMIN = "ADMIN"
    SERVICE = "SERVICE"


class User(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "users"

    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[UserStatus] = mapped_column(
        Enum(UserStatus, native_enum=False, length=16), default=UserStatus.ACTIVE
    )
    roles: Mapped[list[str]] = mapped_column(default=lambda: [Role.USER.value])
    locale: Mapped[str] = mapped_column(String(16), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    external_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    deleted_at: Mapped[datetime | None]

    groups: Mapped[list[Group]] = relationship(
        secondary="user_group_members", back_populates="members", lazy="raise"
    )

    def has_role(self, role: Role) -> bool:
        return role.value in self.roles


class Group(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "user_groups"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")

    members: Mapped[list[User]] = relationship(
        secondary="user_group_members", back_populates="groups", lazy="raise"
    )


class GroupMember(TimestampMixin, Base):
    __tablename__ = "user_group_members"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class RefreshToken(UUIDPrimaryKey, TimestampMixin, Base):
    """One link of a rotation chain. Tokens of one login share a `family_id`.

    Presenting a token whose `rotated_at` is set means it leaked: the whole family is revoked.
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family_id", "family_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class ServiceToken(UUIDPrimaryKey, TimestampMixin, Base):
    """A long-lived opaque token for an internal caller; only its hash is stored."""

    __tablename__ = "service_tokens"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[list[str]]
    revoked_at: Mapped[datetime | None]


class IdempotencyRecord(UUIDPrimaryKey, TimestampMixin, Base):
    """The first result of a mutation called with an `idempotencyKey`, per caller."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("principal", "operation", "key"),)

    principal: Mapped[str] = mapped_column(String(100))
    operation: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    result_ref: Mapped[str] = mapped_column(String(255))


class AuditLog(UUIDPrimaryKey, TimestampMixin, Base):
    """Who did what to whom, for admin and service actions."""

    __tablename__ = "audit_log"

    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(100), index=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
