"""One way a business rejection becomes a payload error.

Every mutation payload has `errors: [XError!]!` where `XError { code, field, message }` and
`code` is the service's own error-code enum, registered with GraphQL once, in the domain's
`schema/<domain>/errors.py`. Where a client must see fewer codes than the service knows
(anti-enumeration), the service narrows the code before raising, in one explicit mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from app.services.errors import DomainError

E = TypeVar("E")


def payload_errors(error_type: Callable[..., E], exc: DomainError, **extra: Any) -> list[E]:
    """`[error_type(code, field, message, **extra)]` for a rejection."""
    return [error_type(code=exc.code, field=exc.field, message=exc.message, **extra)]
