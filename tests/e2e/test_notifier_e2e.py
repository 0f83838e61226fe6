"""The notifier on real processes, delivering to a real SMTP server (aiosmtpd on loopback):

- the embedded default: `engage migrate` loads the catalog, `engage serve` runs the worker
  in-process; a published event is handled and its email dispatched at once (on demand, not
  at the minute);
- production: `engage serve` + two `engage worker` processes on PostgreSQL + Redis; events
  for many clients, each email delivered exactly once, and an admin sees the history.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.e2e.conftest import LiveServerFactory
from tests.e2e.test_first_run import _engage, _post
from tests.e2e.test_jobs_e2e import E2E_REDIS_URL, _admin_token, _Processes, pg_database
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.e2e
__all__ = ["pg_database"]

UPSERT = """mutation U($input: CorpClientInput!) {
  corpClientUpsert(input: $input) { client { clientId } errors { code field } } }"""
PUBLISH = """mutation P($input: CorpEventPublishInput!) {
  corpEventPublish(input: $input) { eventId duplicate errors { code field } } }"""
HISTORY = """query { corpEmails(first: 100) { edges { node { notice status attempts
  client { clientId } } } } }"""


def _service_token(workdir: Path, env: dict[str, str]) -> str:
    return _engage(workdir, env, "token", "create", "--name", "e2e-corp").strip().splitlines()[-1]


def _client(base_url: str, token: str, client_id: str, locale: str = "ru") -> None:
    data = {
        "clientId": client_id,
        "name": f"Client {client_id}",
        "emails": [f"{client_id}@corp.example.com"],
        "contractType": "PREPAID",
        "currency": "RUB",
        "lowBalanceThresholdMinor": 500_000,
        "locale": locale,
    }
    body = _post(base_url, UPSERT, {"input": data}, token=token)
    assert body["data"]["corpClientUpsert"]["errors"] == [], body


def _publish(base_url: str, token: str, client_id: str, type_: str, payload: Any) -> None:
    data = {
        "type": type_,
        "clientId": client_id,
        "payload": payload,
        "idempotencyKey": uuid.uuid4().hex,
    }
    body = _post(base_url, PUBLISH, {"input": data}, token=token)
    assert body["data"]["corpEventPublish"]["errors"] == [], body


def _wait(smtp: SmtpServer, count: int, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while len(smtp.messages) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp.messages) >= count, f"{len(smtp.messages)} of {count} arrived"


def test_the_embedded_default_delivers_an_event_email_at_once(
    tmp_path: Path, live_server_factory: LiveServerFactory
) -> None:
    with SmtpServer() as smtp:
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}",
            "SMTP_URL": smtp.url,
        }
        assert "notifier catalog v1 loaded" in _engage(tmp_path, env, "migrate")
        service = _service_token(tmp_path, env)
        base_url = live_server_factory(env)
        _client(base_url, service, "corp-1", locale="en")
        started = time.monotonic()
        _publish(base_url, service, "corp-1", "LIMIT_REACHED", {"limitMinor": 1, "currency": "RUB"})
        _wait(smtp, 1, timeout=20)
        elapsed = time.monotonic() - started
    [mail] = smtp.messages
    assert mail.rcpt_tos == ["corp-1@corp.example.com"]
    assert mail.message["X-Engage-Notice"] == "LimitIsOverNotice"
    assert mail.message["Content-Language"] == "en"
    assert elapsed < 20  # well before a minute: the on-demand dispatch, not the schedule


def test_workers_deliver_every_email_once_on_postgresql(
    tmp_path: Path, live_server_factory: LiveServerFactory, pg_database: str
) -> None:
    Redis.from_url(E2E_REDIS_URL).flushdb()
    with SmtpServer() as smtp:
        env = {
            "DATABASE_URL": pg_database,
            "REDIS_URL": E2E_REDIS_URL,
            "SMTP_URL": smtp.url,
            "WORKER_SHUTDOWN_TIMEOUT_SECONDS": "5",
        }
        _engage(tmp_path, env, "migrate")
        base_url = live_server_factory(env)
        admin = _admin_token(tmp_path, env, base_url)
        service = _service_token(tmp_path, env)
        processes = _Processes(tmp_path, env)
        try:
            for name in ("worker-1", "worker-2"):
                processes.start(name, "worker", "--processes", "1", "--threads", "2")
            clients = [f"corp-{n}" for n in range(12)]
            for client_id in clients:
                _client(base_url, service, client_id)
                _publish(base_url, service, client_id, "CONTRACT_ACTIVATED",
                         {"contractType": "PREPAID", "service": "TAXI"})  # fmt: skip
                _publish(base_url, service, client_id, "LIMIT_REACHED",
                         {"limitMinor": 1, "currency": "RUB"})  # fmt: skip
            _wait(smtp, 24)
            time.sleep(1.0)  # a duplicate would arrive now
        finally:
            processes.stop_all()
    ids = Counter(str(m.message["Message-ID"]) for m in smtp.messages)
    assert len(ids) == 24 and set(ids.values()) == {1}
    history = _post(base_url, HISTORY, token=admin)["data"]["corpEmails"]["edges"]
    states = Counter((e["node"]["notice"], e["node"]["status"]) for e in history)
    assert states[("ActivateClientNotice", "SENT")] == 12
    assert states[("LimitIsOverNotice", "SENT")] == 12
    assert states[("PrepaidFirstTakeARideNotice", "SCHEDULED")] == 12
