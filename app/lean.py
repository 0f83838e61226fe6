"""The lean data path: hot statements built once, run on the unit of work's own connection.

A request or job that runs at volume spends more CPU in the layers around a statement than
in PostgreSQL: per statement on this machine, raw asyncpg 38-65 µs, SQLAlchemy Core
`conn.execute` 130-220 µs, the ORM 290-370 µs (docs/benchmarks.md). A `HotStatement` is
written once with SQLAlchemy Core, so its SQL is checked and typed like any other, and is
compiled once per dialect:

- on PostgreSQL it runs as a prepared statement straight on the asyncpg connection under the
  session's transaction (asyncpg caches the prepared statement per connection); parameters
  and result columns go through the same type processors SQLAlchemy would apply, called
  directly, so the values are the ones Core would return (enums, JSON, UUIDs, datetimes);
- on SQLite (the embedded default, not a volume target) it runs through Core.

The engine's `before_cursor_execute` listeners see every statement, so statement-count tests
and tracing count these too. Rows come back as named tuples (`row.column`, `row[0]`,
slicing). The statement joins the session's unit of work: same connection, same
transaction, the session's turn-taking (`SerializedSession`) and its commit or rollback.
Nothing is flushed: never mix it with pending ORM changes of the same rows in one unit of
work (flush them first).

`rows_many` and `execute_many` run one statement for each of several parameter sets: on
PostgreSQL in one round trip (asyncpg's pipelined `fetchmany` / `executemany`, announced to
the listeners once), on SQLite one Core call per set (`rows_many`) or one Core executemany
(`execute_many`).

Rules for statements: no runtime-expanding `IN` parameters (use `= ANY(:ids)` on
PostgreSQL, or a constant list, which is rendered at build time); every bound parameter is
named (`bindparam("user_id")`) and passed by name.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Bind:
    name: str  # the caller's parameter; "" for a value the statement itself fixed
    processor: _Processor
    constant: Any
    default: Callable[[], Any] | None = None  # a column's Python-side default, per call


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[_Bind, ...]
    row: Callable[..., Any]
    processors: tuple[_Processor, ...]
    any_processor: bool

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for bind in self.binds:
            if bind.name:
                value = params[bind.name]
            elif bind.default is not None:
                value = bind.default()
            else:
                value = bind.constant
            if bind.processor is not None and value is not None:
                value = bind.processor(value)
            values.append(value)
        return values

    def build(self, record: Sequence[Any]) -> Any:
        if not self.any_processor:
            return self.row(*record)
        return self.row(
            *(
                value if processor is None or value is None else processor(value)
                for processor, value in zip(self.processors, record, strict=True)
            )
        )


def _runtime_bind(name: str, processor: _Processor) -> _Bind:
    return _Bind(name=name, processor=processor, constant=None)


def _default_bind(default: Callable[[], Any], processor: _Processor) -> _Bind:
    return _Bind(name="", processor=processor, constant=None, default=default)


def _column_defaults(compiled: SQLCompiler) -> dict[str, Callable[[], Any]]:
    """Python-side column defaults the statement leaves to execution time (`default=`
    on INSERT, `onupdate=` on UPDATE), which SQLAlchemy's execution context would compute."""
    found: dict[str, Callable[[], Any]] = {}
    for columns, attribute in (
        (compiled.insert_prefetch, "default"),
        (compiled.update_prefetch, "onupdate"),
    ):
        for column in columns:
            default = getattr(column, attribute)
            if default is None:
                continue
            if default.is_callable:
                found[column.key] = functools.partial(default.arg, None)
            elif default.is_scalar:
                found[column.key] = functools.partial(_same, default.arg)
    return found


def _same(value: Any) -> Any:
    return value


def _constant_bind(value: Any, processor: _Processor) -> _Bind:
    """A value the statement fixed: processed once, here."""
    return _Bind(name="", processor=None, constant=processor(value) if processor else value)


class HotStatement:
    """One statement of a hot path; see the module docstring."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        self._own_keys: frozenset[str] | None = None
        columns = getattr(statement, "selected_columns", None)
        if columns is None:  # DML: the RETURNING columns, if any
            columns = [d["expr"] for d in getattr(statement, "returning_column_descriptions", ())]
        keys = [column.key for column in columns]
        self.row: Callable[..., Any] = namedtuple("Row", keys, rename=True) if keys else tuple

    def _own(self, connection: AsyncConnection, params: Mapping[str, Any]) -> dict[str, Any]:
        """Only the statement's own parameters, for Core: there an extra one named like a
        column of an INSERT or UPDATE would silently become a value for that column, where
        the PostgreSQL path ignores it."""
        if self._own_keys is None:
            compiled = self.statement.compile(dialect=connection.dialect)  # type: ignore[attr-defined]
            self._own_keys = frozenset(bind.key for bind in compiled.binds.values())
        return {key: value for key, value in params.items() if key in self._own_keys}

    def compiled(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect, params)
        return found

    def _compile(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        runtime = {bind.key for bind in compiled.binds.values() if bind.required}
        for bind in compiled.binds.values():
            if bind.expanding and bind.required:
                raise ValueError(f"{bind.key}: an expanding IN parameter; use = ANY(:{bind.key})")
        # Expanding parameters are all constants (checked above), so the expanded SQL is the
        # same for every call: expand once, with this first call's parameters.
        state = compiled.construct_expanded_state({key: params[key] for key in runtime})
        bind_processors: dict[str, Any] = {**compiled._bind_processors, **state.processors}
        defaults = _column_defaults(compiled)
        binds = tuple(
            _runtime_bind(name, bind_processors.get(name))
            if name in runtime
            else _default_bind(defaults[name], bind_processors.get(name))
            if name in defaults
            else _constant_bind(state.parameters[name], bind_processors.get(name))
            for name in state.positiontup or ()
        )
        processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in compiled._result_columns
        )
        return _Compiled(
            sql=state.statement,
            binds=binds,
            row=self.row,
            processors=processors,
            any_processor=any(p is not None for p in processors),
        )

    async def rows(self, session: AsyncSession, **params: Any) -> list[Any]:
        return list(await _run(session, self._rows, params))

    async def one_or_none(self, session: AsyncSession, **params: Any) -> Any:
        rows = await self.rows(session, **params)
        if len(rows) > 1:
            raise LookupError(f"more than one row: {self.statement}")
        return rows[0] if rows else None

    async def one(self, session: AsyncSession, **params: Any) -> Any:
        """The statement's only row (an aggregate, say); LookupError if there is none."""
        row = await self.one_or_none(session, **params)
        if row is None:
            raise LookupError(f"no row: {self.statement}")
        return row

    async def scalar(self, session: AsyncSession, **params: Any) -> Any:
        row = await self.one_or_none(session, **params)
        return None if row is None else row[0]

    async def execute(self, session: AsyncSession, **params: Any) -> int:
        """Run a statement without rows to return; the number of rows it touched."""
        return int(await _run(session, self._execute, params))

    async def rows_many(
        self, session: AsyncSession, params: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """The rows of the statement run once per parameter set, all in one list, in order."""
        if not params:
            return []
        return list(await _run(session, self._rows_many, params))

    async def execute_many(
        self, session: AsyncSession, params: Sequence[Mapping[str, Any]]
    ) -> None:
        """Run the statement once per parameter set, returning nothing."""
        if params:
            await _run(session, self._execute_many, params)

    async def _rows_many(
        self, session: AsyncSession, params: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        connection = await session.connection()
        if connection.dialect.name != "postgresql":
            found: list[Any] = []
            for one in params:
                result = await connection.execute(self.statement, self._own(connection, one))
                found.extend(self.row(*row) for row in result)
            return found
        compiled = self.compiled(connection.dialect, params[0])
        driver = await _driver(session, connection)
        arguments = [compiled.arguments(one) for one in params]
        _announce(connection, compiled.sql, arguments[0])
        records = await driver.fetchmany(compiled.sql, arguments)
        return [compiled.build(record) for record in records]

    async def _execute_many(
        self, session: AsyncSession, params: Sequence[Mapping[str, Any]]
    ) -> None:
        connection = await session.connection()
        if connection.dialect.name != "postgresql":
            await connection.execute(self.statement, [self._own(connection, one) for one in params])
            return
        compiled = self.compiled(connection.dialect, params[0])
        driver = await _driver(session, connection)
        arguments = [compiled.arguments(one) for one in params]
        _announce(connection, compiled.sql, arguments[0])
        await driver.executemany(compiled.sql, arguments)

    async def _rows(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        connection = await session.connection()
        if connection.dialect.name != "postgresql":
            result = await connection.execute(self.statement, self._own(connection, params))
            return [self.row(*row) for row in result]
        compiled = self.compiled(connection.dialect, params)
        driver = await _driver(session, connection)
        arguments = compiled.arguments(params)
        _announce(connection, compiled.sql, arguments)
        records = await driver.fetch(compiled.sql, *arguments)
        return [compiled.build(record) for record in records]

    async def _execute(self, session: AsyncSession, params: Mapping[str, Any]) -> int:
        connection = await session.connection()
        if connection.dialect.name != "postgresql":
            result = await connection.execute(self.statement, self._own(connection, params))
            return int(getattr(result, "rowcount", 0) or 0)
        compiled = self.compiled(connection.dialect, params)
        driver = await _driver(session, connection)
        arguments = compiled.arguments(params)
        _announce(connection, compiled.sql, arguments)
        status: str = await driver.execute(compiled.sql, *arguments)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


async def _run(session: AsyncSession, operation: Callable[..., Any], params: Any) -> Any:
    serialized = getattr(session, "serialized", None)
    if serialized is not None:
        return await serialized(operation, session, params)
    return await operation(session, params)


DIALECTS = ("postgresql", "sqlite")


def one_of(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the list bound as `name`: `= ANY(:name)` with one array parameter
    on PostgreSQL (a prepared statement for any list length), an expanding `IN` on SQLite
    (it has no arrays; Core expands the list per call). Build one statement per dialect:
    `{d: HotStatement(... one_of(col, "ids", d) ...) for d in DIALECTS}`."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def _announce(connection: AsyncConnection, sql: str, arguments: Sequence[Any]) -> None:
    """Tell the engine's `before_cursor_execute` listeners (statement counters, tracing,
    echo) about a statement sent past SQLAlchemy, as SQLAlchemy would (no cursor)."""
    sync = connection.sync_connection
    if sync is not None and sync.dispatch.before_cursor_execute:
        sync.dispatch.before_cursor_execute(sync, None, sql, tuple(arguments), None, False)


async def _driver(session: AsyncSession, connection: AsyncConnection) -> Any:
    """The asyncpg connection under `connection`, with the session's transaction begun.

    SQLAlchemy's asyncpg adapter begins its transaction at the first statement it sends
    itself; a statement sent straight to asyncpg first would run outside it (autocommit).
    `tests/platform/test_lean.py` pins this against the installed SQLAlchemy.
    """
    raw = await connection.get_raw_connection()
    adapted = raw.dbapi_connection
    if getattr(adapted, "_transaction", True) is None and adapted.isolation_level != "autocommit":  # type: ignore[union-attr]
        await adapted._start_transaction()  # type: ignore[union-attr]
    return raw.driver_connection
