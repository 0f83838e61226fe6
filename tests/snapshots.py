"""Table snapshots and digests: prove a request changed no row, not merely no row count.

`row_counts` (tests/helpers.py) misses an UPDATE (a notification marked seen, a token
revoked); a snapshot of every row doesn't. The rows are read with `SELECT *` of what the
database holds (not the ORM's columns), so a model edited ahead of its migration doesn't
break the comparison.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from app.models.base import Base
from app.runtime import Runtime

Row = tuple[tuple[str, str], ...]  # (column, value as text), sorted by column
Snapshot = dict[str, tuple[Row, ...]]  # table -> its rows, sorted


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str):
        return value
    return repr(value)


def _row(mapping: Mapping[Any, Any]) -> Row:
    return tuple(sorted((str(column), _text(value)) for column, value in mapping.items()))


async def table_rows(runtime: Runtime) -> Snapshot:
    """Every row of every table, as text (compare two snapshots of one backend)."""
    async with runtime.session_factory() as session:
        snapshot: Snapshot = {}
        for table in Base.metadata.sorted_tables:
            result = await session.execute(text(f'SELECT * FROM "{table.name}"'))
            snapshot[table.name] = tuple(sorted(_row(row) for row in result.mappings()))
        return snapshot


def digest(snapshot: Snapshot) -> dict[str, str]:
    """A SHA-256 per table of its rows."""
    return {
        table: hashlib.sha256(repr(rows).encode()).hexdigest() for table, rows in snapshot.items()
    }


async def table_digests(runtime: Runtime) -> dict[str, str]:
    """A SHA-256 per table of every row: equal before and after means nothing changed."""
    return digest(await table_rows(runtime))


@dataclass(frozen=True)
class TableChange:
    removed: tuple[Row, ...]  # rows gone, or an updated row's old version
    added: tuple[Row, ...]  # new rows, or an updated row's new version


def changes(before: Snapshot, after: Snapshot) -> dict[str, TableChange]:
    """The tables whose rows differ, with what went and what came."""
    found = {}
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, ())), set(after.get(table, ()))
        if old != new:
            found[table] = TableChange(tuple(sorted(old - new)), tuple(sorted(new - old)))
    return found
