"""Personal goals: templates, user goals, the progress ledger, notifications.

Invariants the database keeps (not only the code):
- at most one ACTIVE goal per user (`uq_user_goals_one_active`, a partial unique index);
- a user waits for a template at most once (`uq_user_goals_pending`: one NEXT/ACTIVE per pair);
- 0 <= progress <= target;
- one ledger row per order; one notification per goal and kind.

User goals snapshot the template's conditions and bonus when assigned: editing a template
changes what later assignments promise, never what a user was already promised.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UUIDPrimaryKey

LocalizedText = dict[str, Any]  # {"en": "...", "ru": "..."}; the template names its default


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32)


class TemplateStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"  # kept for goals already assigned; can't be assigned again


class UserGoalStatus(enum.StrEnum):
    NEXT = "NEXT"
    ACTIVE = "ACTIVE"
    DONE = "DONE"
    MISSED = "MISSED"


class NotificationKind(enum.StrEnum):
    ACHIEVEMENT = "ACHIEVEMENT"  # the goal is done and its bonus granted
    REMINDER = "REMINDER"  # the active goal expires soon
    ASSIGNED = "ASSIGNED"  # an admin assigned the goal (optional per upload)


class GoalTemplate(TimestampMixin, Base):
    """What a goal asks for and gives; assigned to users as `UserGoal`s."""

    __tablename__ = "goal_templates"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # a slug, e.g. comfort-5
    status: Mapped[TemplateStatus] = mapped_column(
        _enum(TemplateStatus), default=TemplateStatus.ACTIVE
    )
    default_locale: Mapped[str] = mapped_column(String(16), default="en")
    title: Mapped[dict[str, Any]]
    description: Mapped[dict[str, Any]]
    details: Mapped[dict[str, Any]]  # locale -> list of lines
    button_text: Mapped[dict[str, Any]]
    conditions: Mapped[dict[str, Any]]
    bonus: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(100))
    updated_by: Mapped[str] = mapped_column(String(100))


class GoalAssignmentBatch(UUIDPrimaryKey, TimestampMixin, Base):
    """One committed CSV upload; its content hash makes re-uploading the same file a no-op."""

    __tablename__ = "goal_assignment_batches"

    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    rows: Mapped[int] = mapped_column(Integer)
    assigned: Mapped[int] = mapped_column(Integer)
    notify: Mapped[bool]
    created_by: Mapped[str] = mapped_column(String(100))


class UserGoal(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "user_goals"
    __table_args__ = (
        CheckConstraint("target >= 1", name="target_positive"),
        CheckConstraint("progress >= 0 AND progress <= target", name="progress_within_target"),
        CheckConstraint(
            "custom_ends_at IS NULL OR custom_starts_at IS NULL"
            " OR custom_ends_at > custom_starts_at",
            name="custom_window",
        ),
        Index(
            "uq_user_goals_one_active",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'ACTIVE'"),
            sqlite_where=text("status = 'ACTIVE'"),
        ),
        Index(
            "uq_user_goals_pending",
            "user_id",
            "goal_id",
            unique=True,
            postgresql_where=text("status IN ('NEXT', 'ACTIVE')"),
            sqlite_where=text("status IN ('NEXT', 'ACTIVE')"),
        ),
        Index("ix_user_goals_user_status", "user_id", "status", "position"),
        Index(
            "ix_user_goals_active_expiry",
            "expires_at",
            postgresql_where=text("status = 'ACTIVE'"),
            sqlite_where=text("status = 'ACTIVE'"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    goal_id: Mapped[str] = mapped_column(ForeignKey("goal_templates.id"))
    status: Mapped[UserGoalStatus] = mapped_column(
        _enum(UserGoalStatus), default=UserGoalStatus.NEXT
    )
    position: Mapped[int] = mapped_column(Integer)  # the order NEXT goals activate in
    conditions: Mapped[dict[str, Any]]
    bonus: Mapped[dict[str, Any]]
    target: Mapped[int] = mapped_column(Integer)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    custom_starts_at: Mapped[datetime | None]
    custom_ends_at: Mapped[datetime | None]
    starts_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    missed_at: Mapped[datetime | None]
    bonus_granted_at: Mapped[datetime | None]
    bonus_ref: Mapped[str | None] = mapped_column(String(100))
    bonus_details: Mapped[dict[str, Any] | None]
    reminded_at: Mapped[datetime | None]
    assigned_by: Mapped[str] = mapped_column(String(100))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("goal_assignment_batches.id", ondelete="SET NULL")
    )


class GoalProgressEntry(UUIDPrimaryKey, TimestampMixin, Base):
    """The per-order ledger: did this order count towards a goal, and if not, why."""

    __tablename__ = "goal_progress"
    __table_args__ = (Index("ix_goal_progress_user_created", "user_id", "created_at"),)

    order_id: Mapped[str] = mapped_column(
        ForeignKey("goal_orders.order_id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    user_goal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_goals.id", ondelete="SET NULL"), index=True
    )
    reason: Mapped[str] = mapped_column(String(32))
    counted: Mapped[bool]
    reversed_at: Mapped[datetime | None]  # a counted order later cancelled or refunded


class GoalNotification(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "goal_notifications"
    __table_args__ = (
        UniqueConstraint("user_goal_id", "kind", name="uq_goal_notifications_goal_kind"),
        Index(
            "ix_goal_notifications_unseen",
            "user_id",
            "kind",
            postgresql_where=text("seen_at IS NULL"),
            sqlite_where=text("seen_at IS NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    user_goal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_goals.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(_enum(NotificationKind))
    seen_at: Mapped[datetime | None]
