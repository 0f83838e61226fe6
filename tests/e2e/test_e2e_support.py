"""The e2e plumbing itself: its Redis database and a missing Node.js (no processes run)."""

from __future__ import annotations

import pytest

from tests.conftest import REDIS_URL
from tests.e2e import test_http_conformance
from tests.e2e.conftest import e2e_redis_url


@pytest.mark.parametrize(
    ("base", "derived"),
    [
        ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/12"),
        ("redis://:secret@cache.internal:6380/3", "redis://:secret@cache.internal:6380/12"),
        ("redis://cache.internal:6380", "redis://cache.internal:6380/12"),
        ("redis://cache.internal/12", "redis://cache.internal/13"),
        (
            "rediss://cache.internal:6380/15?ssl_cert_reqs=none",
            "rediss://cache.internal:6380/12?ssl_cert_reqs=none",
        ),
    ],
)
def test_the_e2e_redis_is_another_database_on_the_test_server(base: str, derived: str) -> None:
    assert e2e_redis_url(base) == derived


def test_the_e2e_redis_follows_engage_test_redis_url() -> None:
    assert e2e_redis_url() == e2e_redis_url(REDIS_URL) != REDIS_URL


def test_a_missing_node_fails_the_conformance_test_instead_of_skipping_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(test_http_conformance.shutil, "which", lambda tool: None)
    with pytest.raises(pytest.fail.Exception, match="node is not installed"):
        test_http_conformance._require("node")
