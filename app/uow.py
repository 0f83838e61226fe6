"""The unit of work, the same for every caller: a GraphQL request, an actor, a CLI command.

Services never commit. Whoever calls them owns one `UnitOfWork` and ends it with
`finish(commit=...)`, which after a commit, in this order:

1. relays the jobs the transaction wrote to the outbox (`app.outbox.enqueue`) to the broker;
   without a relay (a CLI command) they wait for the outbox sweeper;
2. publishes the events it published (`app.events.publish_after_commit`) to pub/sub;
   without a pub/sub nobody could be listening, and they are dropped;
3. runs the after-commit hooks services registered with `on_commit` (metrics, mostly).

A rollback discards pending jobs, events and hooks alike. None of the three steps raises:
the transaction is already committed, and what it promised is in the outbox.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app import events, outbox
from app.db import SessionFactory
from app.outbox import OutboxRelay
from app.pubsub import PubSub

log = structlog.get_logger("engage.uow")

Hook = Callable[[], None] | Callable[[], Awaitable[None]]
_HOOKS = "engage.uow.after_commit"


def on_commit(session: AsyncSession, hook: Hook) -> None:
    """Run `hook` once the unit of work that owns `session` has committed (never on rollback)."""
    session.info.setdefault(_HOOKS, []).append(hook)


@dataclass
class UnitOfWork:
    """One transaction on a session opened on first use, and what follows its commit."""

    session_factory: SessionFactory
    relay: OutboxRelay | None = None
    pubsub: PubSub | None = None
    _session: AsyncSession | None = field(default=None, repr=False)

    @property
    def started(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self.session_factory()
        return self._session

    async def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) and close the session; after a commit, relay, publish, hook."""
        if self._session is None:
            return
        session, self._session = self._session, None
        try:
            if commit:
                await session.commit()
            else:
                _discard(session)
                await session.rollback()
        except BaseException:
            _discard(session)
            raise
        finally:
            await session.close()
        if commit:
            await self._after_commit(session)

    async def _after_commit(self, session: AsyncSession) -> None:
        if self.relay is not None:
            await self.relay.relay_committed(session)
        else:
            outbox.discard_pending(session)  # committed rows: the sweeper relays them
        if self.pubsub is not None:
            await events.publish_committed(self.pubsub, session)
        else:
            events.discard_pending_events(session)
        for hook in session.info.pop(_HOOKS, ()):
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("uow.after_commit_hook_failed", hook=repr(hook))


def _discard(session: AsyncSession) -> None:
    outbox.discard_pending(session)
    events.discard_pending_events(session)
    session.info.pop(_HOOKS, None)


@asynccontextmanager
async def unit_of_work(
    session_factory: SessionFactory,
    relay: OutboxRelay | None = None,
    pubsub: PubSub | None = None,
) -> AsyncIterator[AsyncSession]:
    """A block that is one unit of work: committed when it succeeds, rolled back when it
    raises, and followed by the relay, publish and hooks of `UnitOfWork.finish`."""
    work = UnitOfWork(session_factory, relay, pubsub)
    try:
        yield work.session
    except BaseException:
        await work.finish(commit=False)
        raise
    await work.finish(commit=True)
