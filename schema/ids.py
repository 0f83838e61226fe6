"""Global ids and node keys: decoding them into UUIDs, with typed errors for mutations."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.errors import DomainError
from schema.base import decode_global_id


def node_uuid(value: strawberry.ID, type_name: str, field: str, code: enum.Enum) -> uuid.UUID:
    """The UUID inside a `type_name` global id given in `field`; a typed error if it isn't one."""
    try:
        return decode_global_id(value, type_name)
    except ValueError as exc:
        raise DomainError(code, f"Not a {type_name} id.", field) from exc


def parse_uuids(keys: Sequence[str]) -> dict[str, uuid.UUID]:
    """The keys that are UUIDs; a node id that is not one (a forged global id) names no row."""
    parsed = {}
    for key in keys:
        try:
            parsed[key] = uuid.UUID(key)
        except ValueError:
            continue
    return parsed


async def rows_by_ids(session: AsyncSession, model: Any, ids: Sequence[str]) -> list[Any]:
    """The `model` rows for node ids, in order; None where an id names no row."""
    keys = parse_uuids(ids)
    rows = await session.scalars(select(model).where(model.id.in_(set(keys.values()))))
    by_id = {row.id: row for row in rows}
    return [by_id.get(keys[key]) if key in keys else None for key in ids]
