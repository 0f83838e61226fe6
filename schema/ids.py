"""Global ids in mutation inputs: decoding them into UUIDs, with typed errors."""

from __future__ import annotations

import enum
import uuid

import strawberry

from app.services.errors import DomainError
from schema.base import decode_global_id


def node_uuid(value: strawberry.ID, type_name: str, field: str, code: enum.Enum) -> uuid.UUID:
    """The UUID inside a `type_name` global id given in `field`; a typed error if it isn't one."""
    try:
        return decode_global_id(value, type_name)
    except ValueError as exc:
        raise DomainError(code, f"Not a {type_name} id.", field) from exc
