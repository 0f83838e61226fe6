"""Rows by the keys of Relay node ids: what DataLoaders and `node(id:)` batch on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


def parse_uuids(keys: Sequence[str]) -> dict[str, uuid.UUID]:
    """The keys that are UUIDs; a node id that is not one (a forged global id) names no row."""
    parsed = {}
    for key in keys:
        try:
            parsed[key] = uuid.UUID(key)
        except ValueError:
            continue
    return parsed


async def rows_by_ids(session: AsyncSession, model: type[T], keys: Sequence[str]) -> list[T | None]:
    """The `model` rows for string keys (UUIDs), in key order; None where a key names no row."""
    parsed = parse_uuids(keys)
    if not parsed:
        return [None] * len(keys)
    column: Any = model.id  # type: ignore[attr-defined]
    rows = await session.scalars(select(model).where(column.in_(set(parsed.values()))))
    by_id = {row.id: row for row in rows}  # type: ignore[attr-defined]
    return [by_id.get(parsed[key]) if key in parsed else None for key in keys]
