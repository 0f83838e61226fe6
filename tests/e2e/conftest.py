"""Fixtures that run engage as real processes.

`live_server` yields the base URL of an `engage serve` on a free port with its own SQLite file.
Extra environment goes in through indirect parametrization::

    @pytest.mark.parametrize("live_server", [{"REDIS_URL": url}], indirect=True)
    def test_x(live_server: str) -> None: ...

or, for several servers in one module, through `live_server_factory(extra_env) -> base URL`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import REDIS_URL

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 20.0
SHUTDOWN_GRACE_SECONDS = 5.0

LiveServerFactory = Callable[[Mapping[str, str] | None], str]

# The e2e processes' Redis database: on the server ENGAGE_TEST_REDIS_URL names, never the
# database the in-process tests flush (tests.conftest.REDIS_URL), so neither disturbs the other.
E2E_REDIS_DATABASES = (12, 13, 14)


def e2e_redis_url(base_url: str | None = None) -> str:
    """`base_url` (default: ENGAGE_TEST_REDIS_URL) with its database number changed to the
    first of E2E_REDIS_DATABASES it doesn't use itself; host, port, credentials and options
    stay."""
    parts = urlsplit(base_url or REDIS_URL)
    path = parts.path.strip("/")
    base_db = int(path) if path.isdigit() else 0
    db = next(n for n in E2E_REDIS_DATABASES if n != base_db)
    return urlunsplit(parts._replace(path=f"/{db}"))


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    base_url: str
    stderr_path: Path

    def stderr_tail(self, limit: int = 4000) -> str:
        text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        return text[-limit:]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        try:
            self.process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _engage_command() -> list[str]:
    script = shutil.which("engage", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "app.cli"]


def _server_env(workdir: Path, extra_env: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'e2e.db'}",
        "ENGAGE_ENV": "test",
        "LOG_JSON": "true",
    }
    # Lets `python -m app.cli` import the project even without an editable install.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra_env or {})
    return env


def start_server(workdir: Path, extra_env: Mapping[str, str] | None = None) -> LiveServer:
    """Start `engage serve` in `workdir` (so no stray `.env` or `engage.db` is picked up)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    stderr_path = workdir / "server.stderr.log"
    with (workdir / "server.stdout.log").open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*_engage_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=_server_env(workdir, extra_env),
            stdout=stdout,
            stderr=stderr,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", stderr_path)
    try:
        _wait_until_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"engage serve exited with {server.process.returncode} before it was healthy:\n"
                f"{server.stderr_tail()}"
            )
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"engage serve was not healthy within {STARTUP_TIMEOUT_SECONDS:.0f}s:\n"
        f"{server.stderr_tail()}"
    )


@pytest.fixture(scope="module")
def live_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServerFactory]:
    """Starts engage servers with extra environment; all of them stop with the module."""
    servers: list[LiveServer] = []

    def start(extra_env: Mapping[str, str] | None = None) -> str:
        server = start_server(tmp_path_factory.mktemp("engage-e2e"), extra_env)
        servers.append(server)
        return server.base_url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of a running `engage serve`; `request.param` (indirect) is extra env."""
    extra_env: Mapping[str, str] | None = getattr(request, "param", None)
    server = start_server(tmp_path_factory.mktemp("engage-e2e"), extra_env)
    yield server.base_url
    server.stop()
