"""Ride checks through the services on both backends: fits, refusals, holds, charges."""

from __future__ import annotations

from app.models.family import LimitFrame
from app.runtime import Runtime
from app.services.family.codes import RideRefusal
from tests.factories import family as f


async def test_a_fare_within_the_limit_fits_and_a_hold_counts(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000, LimitFrame.DAY))
    first = await f.check(runtime, family, kid, 600, order_id="o-1")
    assert first.available and first.hold is not None
    assert first.limit is not None and first.limit.remaining == 400
    second = await f.check(runtime, family, kid, 600, order_id="o-2")
    assert not second.available and second.refusal is RideRefusal.LIMIT_EXCEEDED
    again = await f.check(runtime, family, kid, 600, order_id="o-1")
    assert again.available and again.hold is not None and again.hold.id == first.hold.id
    charged = await f.charge(runtime, family, kid, "o-1", 500)
    assert not charged.duplicate and charged.limit is not None
    assert charged.limit.usage.charged == 500
    third = await f.check(runtime, family, kid, 500)
    assert third.available and third.limit is not None and third.limit.remaining == 500
