"""A small circuit breaker for one event loop: CLOSED → OPEN → HALF_OPEN → CLOSED.

Why our own: pybreaker's asynchronous calls go through Tornado (its `call_async` needs the
tornado package), and aiobreaker, the asyncio fork of pybreaker, has had no release in years
(PyPI's latest is 1.2.0); both also count failures per wrapped call, while the client wants to
count one verdict per logical call after its retries and to decide itself which errors are
failures (a 4xx answer proves the server is up). The state machine is fifty lines.

- CLOSED: calls go out; `failures` consecutive failures open the circuit; a success resets
  the count.
- OPEN: `acquire()` returns None (fail fast, nothing sent) until `reset_seconds` passed since
  opening; then the circuit is HALF_OPEN (decided lazily, on the next look at the clock).
- HALF_OPEN: exactly one caller gets the TRIAL permit; the others fail fast until its verdict.
  A successful trial closes the circuit, a failed one reopens it for another `reset_seconds`.
  A trial that ends without a verdict (cancelled) frees the slot for the next caller.
- Verdicts of ordinary calls that were already in flight when the circuit opened are ignored:
  only the trial decides when the circuit closes again.

Not thread-safe, by design: one breaker per event loop. Coroutines are safe, since no method
awaits. `on_change(state)` is called on every transition (the client feeds a gauge with it).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Permit(enum.Enum):
    CALL = "call"  # an ordinary call through a closed circuit
    TRIAL = "trial"  # the one call that probes a half-open circuit


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.on_change = on_change
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_seconds
        ):
            self._move(BreakerState.HALF_OPEN)
        return self._state

    def acquire(self) -> Permit | None:
        """A permit to send a call now, or None: fail fast."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Permit.CALL
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return Permit.TRIAL
        return None

    def record(self, permit: Permit, *, ok: bool) -> None:
        """The verdict of a call made with `permit`: ok=False for a transient failure."""
        if permit is Permit.TRIAL:
            self._trial_in_flight = False
            self._consecutive = 0
            if ok:
                self._move(BreakerState.CLOSED)
            else:
                self._open()
        elif self._state is BreakerState.CLOSED:
            self._consecutive = 0 if ok else self._consecutive + 1
            if self._consecutive >= self.failures:
                self._open()

    def release(self, permit: Permit) -> None:
        """The call ended without a verdict (cancelled): free the trial slot."""
        if permit is Permit.TRIAL:
            self._trial_in_flight = False

    def _open(self) -> None:
        self._consecutive = 0
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        changed = state is not self._state
        self._state = state
        if changed and self.on_change is not None:
            self.on_change(state)
