"""The passport double (app.integrations.passport.double) on loopback, for the tests.

    with PassportDouble() as passport:         # a sync context manager
        uid = passport.add_account("+79001234567")
        passport.faults(fail_next=2, operations=["add_member"])
        async with passport.client() as client:
            ...
        assert [c["status"] for c in passport.calls("add_member")] == [503, 503, 200]

uvicorn serves `create_double_app` in a daemon thread with its own event loop (as
tests/smtp_server.py does for SMTP), on a loopback port bound before the start, so `url` is
known at once and other processes can use it too (PASSPORT_URL=passport.url). Signal
handlers are left alone (uvicorn installs none outside the main thread; `capture_signals` is
a no-op here all the same) and uvicorn's logging configuration is not applied.

The test thread and the server thread share `state` (the DoubleState): every DoubleState
method takes its lock, so the helpers below call it directly instead of the control
endpoints. At exit, calls still hanging on `timeout_next` are cut short (`state.closing`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Generator, Iterable
from types import TracebackType
from typing import Any

import uvicorn

from app.integrations.passport import CircuitBreaker, DoubleState, PassportClient
from app.integrations.passport.double import create_double_app

HOST = "127.0.0.1"
TOKEN = "passport-test-token"
# What client() builds unless told otherwise: quick to fail, quick to retry.
CLIENT_DEFAULTS: dict[str, Any] = {"timeout": 0.5, "retries": 2, "retry_base_seconds": 0.01}


class _ThreadServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class PassportDouble:
    """A sync context manager; see the module docstring."""

    def __init__(
        self, *, token: str = TOKEN, auto_accounts: bool = True, without: Iterable[str] = ()
    ) -> None:
        self.token = token
        self.state = DoubleState(auto_accounts=auto_accounts, without=without)
        self.host = HOST
        self.port = 0
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # Helpers (in process, under the state's lock)

    def add_account(self, phone: str) -> str:
        """Registers a portal account for the phone; its uid."""
        uid: str = self.state.register(phone)["uid"]
        return uid

    def faults(self, **changes: Any) -> None:
        """Merges fault options (see app.integrations.passport.double_state)."""
        self.state.set_faults(**changes)

    def reset(self, *, data: bool = False, calls: bool = False) -> None:
        self.state.reset(data=data, calls=calls)

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        return self.state.calls(operation)

    def client(self, **overrides: Any) -> PassportClient:
        """A client of this double: timeout 0.5 s, 2 retries from 0.01 s, a breaker of 5
        failures and 30 s; any constructor argument (base_url and token too) overrides."""
        options: dict[str, Any] = {
            **CLIENT_DEFAULTS,
            "breaker": CircuitBreaker(failures=5, reset_seconds=30.0),
        }
        base_url = overrides.pop("base_url", self.url)
        token = overrides.pop("token", self.token)
        options.update(overrides)
        return PassportClient(base_url, token, **options)

    # Lifecycle

    def __enter__(self) -> PassportDouble:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(
            create_double_app(self.state, self.token),
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _ThreadServer(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [listener]},
            name="passport-double",
            daemon=True,
        )
        self._thread.start()
        self._wait_started()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self.state.closing = True
        self._server.should_exit = True
        self._thread.join(10)

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the passport double did not start")
            if time.monotonic() > deadline:
                raise TimeoutError("the passport double did not start")
            time.sleep(0.005)
