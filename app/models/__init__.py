"""ORM models, one module per domain. Importing this package registers every table."""

from app.models.base import Base
from app.models.goals import (
    CashbackGrant,
    GoalAssignmentBatch,
    GoalNotification,
    GoalOrder,
    GoalProgressEntry,
    GoalTemplate,
    UserGoal,
    WalletEntry,
)
from app.models.jobs import JobFailure, JobPing, OutboxMessage, ProcessedMessage
from app.models.promocodes import (
    Plan,
    Promocode,
    PromocodeAttempt,
    PromocodeGrant,
    PromocodeUse,
    Purchase,
)
from app.models.users import (
    AuditLog,
    Group,
    GroupMember,
    IdempotencyRecord,
    RefreshToken,
    ServiceToken,
    User,
)

__all__ = [
    "AuditLog",
    "Base",
    "CashbackGrant",
    "GoalAssignmentBatch",
    "GoalNotification",
    "GoalOrder",
    "GoalProgressEntry",
    "GoalTemplate",
    "Group",
    "GroupMember",
    "IdempotencyRecord",
    "JobFailure",
    "JobPing",
    "OutboxMessage",
    "Plan",
    "ProcessedMessage",
    "Promocode",
    "PromocodeAttempt",
    "PromocodeGrant",
    "PromocodeUse",
    "Purchase",
    "RefreshToken",
    "ServiceToken",
    "User",
    "UserGoal",
    "WalletEntry",
]
