"""The passport integration: the external identity provider's family API (v1).

`PassportClient` speaks it (httpx, retries, a circuit breaker; every failure is a
`PassportError` with a `PassportErrorCode`). The in-memory double of the API, with fault
injection, is `app.integrations.passport.double` (`create_double_app`, `serve`): it is not
imported here, because it needs starlette and uvicorn and the services importing this
package must stay free of starlette (.importlinter, "services are plain"). Its state,
`DoubleState`, has no such dependency and is re-exported. The decisions are in the
docstrings of client.py (retries, breaker, error mapping), breaker.py, metrics.py and
double_state.py (the contract's details and the faults).
"""

from __future__ import annotations

from app.integrations.passport.breaker import BreakerState, CircuitBreaker, Permit
from app.integrations.passport.client import PassportClient, passport_client
from app.integrations.passport.double_state import DoubleState, uid_for
from app.integrations.passport.errors import PassportError, PassportErrorCode
from app.integrations.passport.models import PassportAccount, PassportFamily, PassportMember

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "DoubleState",
    "PassportAccount",
    "PassportClient",
    "PassportError",
    "PassportErrorCode",
    "PassportFamily",
    "PassportMember",
    "Permit",
    "passport_client",
    "uid_for",
]
