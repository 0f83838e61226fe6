"""Identity's error types: the service enums are the GraphQL enums."""

from __future__ import annotations

import strawberry

from app.services.identity.groups import GroupErrorCode
from app.services.identity.users import AccountErrorCode

strawberry.enum(AccountErrorCode, name="AccountErrorCode")
strawberry.enum(GroupErrorCode, name="GroupErrorCode")


@strawberry.type
class AccountError:
    code: AccountErrorCode
    field: str | None
    message: str
    retry_after: int | None = strawberry.field(
        default=None, description="Seconds to wait before trying again (RATE_LIMITED only)."
    )


@strawberry.type
class GroupError:
    code: GroupErrorCode
    field: str | None
    message: str
