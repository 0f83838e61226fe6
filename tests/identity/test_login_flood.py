"""A flood of logins leaves the event loop free (both backends, committing requests).

argon2 is replaced by a stand-in whose verifications block their thread until the test
releases them, so "the hashing is still going on" is a fact the test controls, not a timing.
While the whole pool is blocked, `/healthz` must answer; before the fix every verification
ran on the event loop, and nothing else could run until it ended.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

from app import auth
from app.runtime import Runtime
from tests.conftest import make_client
from tests.factories.identity import PASSWORD, create_user
from tests.helpers import gql

LOGIN = """mutation L($input: LoginInput!) {
  login(input: $input) { tokens { refreshToken } errors { code } } }"""
FLOOD = 200
POOL = 2


class BlockingHasher:
    """Stands in for argon2's PasswordHasher: `verify` waits for `release` in its thread.

    It counts how many verifications run at once, and any that runs on the event loop's
    own thread (which it never blocks, so a broken build fails instead of hanging).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, expected_running: int) -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.expected_running = expected_running
        self.release = threading.Event()
        self.saturated = asyncio.Event()  # the pool is full, or a verification hit the loop
        self.guard = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.on_the_loop = 0
        self.verified = 0

    def verify(self, password_hash: str, password: str) -> bool:
        if threading.get_ident() == self.loop_thread:
            self.on_the_loop += 1
            self.saturated.set()
            return password == PASSWORD
        self._enter()
        self.release.wait(timeout=60)  # a guard against a hang only; the test releases it
        with self.guard:
            self.running -= 1
            self.verified += 1
        return password == PASSWORD

    def _enter(self) -> None:
        with self.guard:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            if self.running == self.expected_running:
                self.loop.call_soon_threadsafe(self.saturated.set)

    def hash(self, password: str) -> str:
        return "stand-in"

    def check_needs_rehash(self, password_hash: str) -> bool:
        return False


def _outcome(body: dict[str, Any]) -> str:
    payload = body["data"]["login"]
    return payload["errors"][0]["code"] if payload["errors"] else "ok"


async def test_healthz_answers_while_the_hashing_pool_is_busy_with_a_flood(
    racing_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_user(racing_runtime, "anna@example.com")  # hashed by the real argon2
    hasher = BlockingHasher(asyncio.get_running_loop(), expected_running=POOL)
    monkeypatch.setattr(auth, "_password_hasher", hasher)
    overrides = {
        "password_hash_concurrency": POOL,
        "login_max_attempts": FLOOD,
        "login_ip_max_attempts": FLOOD,
    }
    variables = {"input": {"login": "anna@example.com", "password": PASSWORD}}
    async with make_client(racing_runtime, **overrides) as client:
        flood = asyncio.gather(*(gql(client, LOGIN, variables) for _ in range(FLOOD)))
        await asyncio.wait_for(hasher.saturated.wait(), timeout=60)  # a hang guard only

        health = await client.get("/healthz")  # started after the flood filled the pool

        assert health.status_code == 200
        assert not flood.done() and hasher.verified == 0  # ...and answered before it ended
        hasher.release.set()
        bodies = await flood
    assert hasher.on_the_loop == 0
    assert hasher.most_running == POOL  # bounded: the rest of the flood queued for the pool
    assert Counter(_outcome(body) for body in bodies) == {"ok": FLOOD}
    assert hasher.verified == FLOOD
