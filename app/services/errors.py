"""Domain errors: expected business outcomes, reported as data in mutation payloads."""

from __future__ import annotations

import enum


class DomainError(Exception):
    """A rejected request. `code` is a member of the domain's error-code enum."""

    def __init__(self, code: enum.Enum, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
