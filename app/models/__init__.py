"""ORM models, one module per domain. Importing this package registers every table."""

from app.models.base import Base
from app.models.goals import (
    GoalAssignmentBatch,
    GoalNotification,
    GoalProgressEntry,
    GoalTemplate,
    UserGoal,
)
from app.models.identity import (
    AuditLog,
    Group,
    GroupMember,
    IdempotencyRecord,
    RefreshToken,
    ServiceToken,
    User,
)
from app.models.operations import JobFailure, JobPing
from app.models.orders import Order
from app.models.outbox import OutboxMessage, ProcessedMessage
from app.models.promocodes import (
    Plan,
    Promocode,
    PromocodeAttempt,
    PromocodeGrant,
    PromocodeUse,
    Purchase,
)
from app.models.wallet import CashbackGrant, WalletEntry

__all__ = [
    "AuditLog",
    "Base",
    "CashbackGrant",
    "GoalAssignmentBatch",
    "GoalNotification",
    "GoalProgressEntry",
    "GoalTemplate",
    "Group",
    "GroupMember",
    "IdempotencyRecord",
    "JobFailure",
    "JobPing",
    "Order",
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
