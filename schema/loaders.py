"""Typed, per-request DataLoaders: each domain declares its own in `schema/<domain>/loaders.py`.

    class PlanByIdLoader(ContextLoader[str, Plan | None]):
        async def batch_load(self, keys: Sequence[str]) -> Sequence[Plan | None]:
            return await plans.plans_by_ids(self.session, keys)

    plan = await info.context.loaders[PlanByIdLoader].load(plan_id)

`Context.loaders` makes one instance of a loader class per request, on first use, so
nothing is cached across callers and no shared list names the loaders. Batch functions
call services (no SQL here) and answer one value per key, in key order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from strawberry.dataloader import DataLoader

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class RequestContext(Protocol):
    """What a loader needs of `schema.context.Context`: the request's unit of work."""

    @property
    def session(self) -> AsyncSession: ...


K = TypeVar("K")
V = TypeVar("V")
L = TypeVar("L", bound="ContextLoader[Any, Any]")


class ContextLoader(DataLoader[K, V], Generic[K, V]):
    """A DataLoader bound to one request's context (and so to its unit of work)."""

    def __init__(self, context: RequestContext) -> None:
        super().__init__(load_fn=self.batch_load)
        self.context = context

    @property
    def session(self) -> AsyncSession:
        return self.context.session

    async def batch_load(self, keys: Sequence[K]) -> Sequence[V]:
        raise NotImplementedError


class Loaders:
    """The request's loaders, made on first use: `loaders[SomeLoader]` is typed."""

    def __init__(self, context: RequestContext) -> None:
        self._context = context
        self._made: dict[type[Any], Any] = {}

    def __getitem__(self, loader_class: type[L]) -> L:
        loader = self._made.get(loader_class)
        if loader is None:
            loader = self._made[loader_class] = loader_class(self._context)
        return loader
