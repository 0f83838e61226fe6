"""GraphQL-over-HTTP conformance of a live `engage serve`, audited by graphql-http.

Every audit must pass, the optional ones (SHOULD, MAY) included. Node.js is a test
dependency like PostgreSQL and Redis (README): without it the test fails, it never skips.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

CONFORMANCE_DIR = Path(__file__).resolve().parent / "conformance"
NPM_TIMEOUT_SECONDS = 300
AUDIT_TIMEOUT_SECONDS = 120


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; the conformance audit needs Node.js")
    return path


def _ensure_node_modules() -> None:
    """Install the audit's npm packages on a fresh clone; leave an existing install alone."""
    if (CONFORMANCE_DIR / "node_modules").is_dir():
        return
    npm = _require("npm")
    has_lock = (CONFORMANCE_DIR / "package-lock.json").is_file()
    completed = subprocess.run(
        [npm, "ci" if has_lock else "install", "--no-audit", "--no-fund"],
        cwd=CONFORMANCE_DIR,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, f"npm failed:\n{completed.stdout}\n{completed.stderr}"


def _run_audit(url: str) -> list[dict[str, Any]]:
    completed = subprocess.run(
        [_require("node"), "audit.mjs", url],
        cwd=CONFORMANCE_DIR,
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, f"audit.mjs failed:\n{completed.stderr}"
    return [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]


def _describe(result: dict[str, Any]) -> str:
    reason = result.get("reason", "")
    http_status = result.get("httpStatus")
    return f"[{result['status']}] {result['id']} {result['name']}: {reason} (HTTP {http_status})"


def test_every_graphql_over_http_audit_passes(live_server: str) -> None:
    _require("node")
    _ensure_node_modules()

    results = _run_audit(f"{live_server}/graphql")

    assert results, "the audit reported nothing"
    failing = [result for result in results if result["status"] != "ok"]
    assert not failing, f"{len(failing)} of {len(results)} audits failed:\n" + "\n".join(
        _describe(result) for result in failing
    )
