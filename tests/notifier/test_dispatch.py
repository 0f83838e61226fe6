"""The dispatcher against a real SMTP server (aiosmtpd on loopback), on both backends: what
arrives, the send-time checks (condition, expiry, throttle, preferences), the retries and
failures of SMTP, and a lapsed claim taken over."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.integrations.mail import FileBackend, SmtpBackend
from app.models.base import utcnow
from app.models.notifier import (
    AttemptOutcome,
    CancelReason,
    DeliveryAttempt,
    EmailStatus,
    NoticeTemplate,
    QueuedEmail,
)
from app.runtime import Runtime
from app.services.notifier.preferences import set_unsubscribed
from tests.factories.notifier import (
    CONFIG,
    create_client,
    dispatch,
    emails,
    load_catalog,
    make_due,
    publish,
    publish_and_handle,
)
from tests.smtp_server import SmtpServer, refused_port

ACTIVATED = {"contractType": "PREPAID", "service": "TAXI"}
LIMIT = {"limitMinor": 100_000, "currency": "RUB"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def smtp_backend(server: SmtpServer, timeout: float = 5.0) -> SmtpBackend:
    return SmtpBackend.from_url(server.url, timeout=timeout, validate_certs=False)


async def _attempts(runtime: Runtime, email_id: object) -> list[DeliveryAttempt]:
    async with runtime.session_factory() as session:
        statement = select(DeliveryAttempt).where(DeliveryAttempt.email_id == email_id)
        return list(await session.scalars(statement.order_by(DeliveryAttempt.attempt)))


async def test_a_due_email_arrives_with_both_parts_in_the_clients_language(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    ru = await create_client(runtime, name='Acme "Trans" <b>', emails=["buh@romashka.example.com"])
    en = await create_client(
        runtime, locale="en", emails=["ap@acme.example.com", "cfo@acme.example.com"]
    )
    for corp in (ru, en):
        await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert (totals.claimed, totals.sent, totals.failed) == (2, 2, 0)
    received = {tuple(r.rcpt_tos): r for r in await smtp.wait_for(2)}
    ru_mail = received[("buh@romashka.example.com",)]
    en_mail = received[("ap@acme.example.com", "cfo@acme.example.com")]
    assert ru_mail.message["Content-Language"] == "ru"
    assert en_mail.message["Content-Language"] == "en"
    assert ru_mail.message["From"] == CONFIG.sender
    assert ru_mail.message["X-Engage-Notice"] == "LimitIsOverNotice"
    assert 'Acme "Trans" <b>' in ru_mail.body("plain")
    html = ru_mail.body("html")
    assert "Acme &#34;Trans&#34; &lt;b&gt;" in html
    assert any("\u0430" <= ch <= "\u044f" for ch in str(ru_mail.message["Subject"]))  # Cyrillic
    assert str(en_mail.message["Subject"]).isascii()
    [ru_row] = await emails(runtime, ru)
    assert ru_row.status is EmailStatus.SENT and ru_row.attempts == 1
    assert ru_row.sent_at is not None and ru_row.template_version == 1
    assert ru_row.subject == str(ru_mail.message["Subject"])
    assert ru_mail.message["Message-ID"] == f"<{ru_row.id}@notifier.engage>"
    assert [a.outcome for a in await _attempts(runtime, ru_row.id)] == [AttemptOutcome.SENT]
    assert smtp.connections == 1  # one connection for the batch


async def test_nothing_is_sent_before_its_time(runtime: Runtime, smtp: SmtpServer) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "CLIENT_CREATED_BY_OFFER", {"contractType": "PREPAID"})
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert totals.claimed == 0 and smtp.messages == []


async def test_a_reminder_is_withheld_when_the_client_already_did_the_thing(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "CONTRACT_ACTIVATED", ACTIVATED)
    # A ride is published but its handling (which would withdraw the reminders) hasn't run.
    await publish(runtime, corp, "RIDE_TAKEN", {"orderId": "o-1", "takenAt": utcnow().isoformat()})
    await make_due(runtime, at=utcnow() - timedelta(seconds=1))
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert (totals.sent, totals.cancelled) == (1, 2)
    states = {e.notice: (e.status, e.cancel_reason) for e in await emails(runtime, corp)}
    assert states == {
        "ActivateClientNotice": (EmailStatus.SENT, None),
        "PrepaidFirstTakeARideNotice": (EmailStatus.CANCELLED, CancelReason.CONDITION),
        "PrepaidSecondTakeARideNotice": (EmailStatus.CANCELLED, CancelReason.CONDITION),
    }
    assert [r.message["X-Engage-Notice"] for r in smtp.messages] == ["ActivateClientNotice"]


async def test_an_email_past_its_expiry_is_cancelled_not_sent_late(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    two_days_ago = utcnow() - timedelta(days=2)
    await publish_and_handle(
        runtime,
        corp,
        "BALANCE_CHANGED",
        {"balanceMinor": 10, "currency": "RUB"},
        occurred_at=two_days_ago,
    )
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert (totals.sent, totals.cancelled) == (0, 1)
    [row] = await emails(runtime, corp)
    assert (row.status, row.cancel_reason) == (EmailStatus.CANCELLED, CancelReason.EXPIRED)
    assert smtp.messages == []


async def test_a_flapping_balance_is_throttled_to_one_email_a_day(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime, balance_minor=None)
    low, high = (
        {"balanceMinor": 10, "currency": "RUB"},
        {"balanceMinor": 900_000, "currency": "RUB"},
    )
    await publish_and_handle(runtime, corp, "BALANCE_CHANGED", low)
    assert (await dispatch(runtime, smtp_backend(smtp))).sent == 1
    for _ in range(3):  # up, down, up, down: each dip queues a reminder again
        await publish_and_handle(runtime, corp, "BALANCE_CHANGED", high)
        await publish_and_handle(runtime, corp, "BALANCE_CHANGED", low)
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert (totals.sent, totals.cancelled) == (0, 1)
    outcomes = [(e.status, e.cancel_reason) for e in await emails(runtime, corp)]
    assert sorted(outcomes, key=str) == sorted(
        [(EmailStatus.SENT, None)]
        + [(EmailStatus.CANCELLED, CancelReason.EVENT)] * 2
        + [(EmailStatus.CANCELLED, CancelReason.THROTTLED)],
        key=str,
    )
    assert len(smtp.messages) == 1


async def test_an_unsubscribed_notice_is_withheld_but_a_critical_one_is_not(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    async with runtime.session_factory() as session, session.begin():
        await set_unsubscribed(session, corp, "ActivateClientNotice", True, actor="admin:test")
    await publish_and_handle(runtime, corp, "CONTRACT_ACTIVATED", ACTIVATED)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    await dispatch(runtime, smtp_backend(smtp))
    states = {e.notice: (e.status, e.cancel_reason) for e in await emails(runtime, corp)}
    assert states["ActivateClientNotice"] == (EmailStatus.CANCELLED, CancelReason.UNSUBSCRIBED)
    assert states["LimitIsOverNotice"] == (EmailStatus.SENT, None)


async def test_a_temporary_smtp_failure_is_retried_with_backoff(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    smtp.fail_next(1, 451, "Try again later")
    before = utcnow()
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert (totals.sent, totals.retried) == (0, 1)
    [row] = await emails(runtime, corp)
    assert row.status is EmailStatus.SCHEDULED and row.attempts == 1
    assert "451" in (row.last_error or "")
    assert before + CONFIG.retry_base <= row.due_at <= utcnow() + CONFIG.retry_base
    assert (await dispatch(runtime, smtp_backend(smtp))).claimed == 0  # not due yet
    await make_due(runtime, at=utcnow() - timedelta(seconds=1))
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert totals.sent == 1
    [row] = await emails(runtime, corp)
    assert row.status is EmailStatus.SENT and row.attempts == 2 and row.last_error is None
    assert [a.outcome for a in await _attempts(runtime, row.id)] == [
        AttemptOutcome.RETRY,
        AttemptOutcome.SENT,
    ]


async def test_a_permanent_smtp_failure_fails_at_once_keeping_the_error(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    smtp.fail_next(1, 554, "Transaction failed")
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert totals.failed == 1
    [row] = await emails(runtime, corp)
    assert row.status is EmailStatus.FAILED and "554" in (row.last_error or "")
    await make_due(runtime, at=utcnow())
    assert (await dispatch(runtime, smtp_backend(smtp))).claimed == 0


async def test_transient_failures_stop_after_the_last_attempt(runtime: Runtime) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    backend = SmtpBackend.from_url(
        f"smtp://127.0.0.1:{refused_port()}", timeout=2.0, validate_certs=False
    )
    for attempt in range(1, CONFIG.max_attempts + 1):
        totals = await dispatch(runtime, backend)
        assert totals.claimed == 1
        [row] = await emails(runtime, corp)
        assert row.attempts == attempt
        await make_due(runtime, at=utcnow() - timedelta(seconds=1))
    assert row.status is EmailStatus.FAILED
    outcomes = [a.outcome for a in await _attempts(runtime, row.id)]
    assert outcomes == [AttemptOutcome.RETRY] * (CONFIG.max_attempts - 1) + [AttemptOutcome.FAILED]
    # Backoff doubles: base, then 2 x base.
    assert CONFIG.retry_base * 2**1 <= CONFIG.retry_max


async def test_a_server_that_does_not_answer_in_time_is_a_transient_failure(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    smtp.delay_seconds = 2.0
    totals = await dispatch(runtime, smtp_backend(smtp, timeout=0.5))
    assert totals.retried == 1
    [row] = await emails(runtime, corp)
    assert row.status is EmailStatus.SCHEDULED and row.last_error


async def test_a_template_that_does_not_render_fails_the_email_without_sending(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    async with runtime.session_factory() as session, session.begin():
        session.add(  # written around the editing checks, as a broken migration could
            NoticeTemplate(
                notice="LimitIsOverNotice", locale="ru", version=2, subject="{{ client.nope }}",
                text_body="x", html_body="x", created_by="test",
            )
        )  # fmt: skip
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert totals.failed == 1 and smtp.messages == []
    [row] = await emails(runtime, corp)
    assert row.status is EmailStatus.FAILED
    assert "LimitIsOverNotice/ru v2 subject line 1" in (row.last_error or "")


async def test_a_lapsed_claim_is_taken_over_and_the_old_claim_records_nothing(
    runtime: Runtime, smtp: SmtpServer
) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime)
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    async with runtime.session_factory() as session, session.begin():
        await session.execute(  # a dispatcher claimed it and died
            update(QueuedEmail).values(
                status=EmailStatus.SENDING,
                claim_token="dead" * 8,
                lease_until=datetime.now(UTC) - timedelta(seconds=1),
                attempts=1,
            )
        )
    totals = await dispatch(runtime, smtp_backend(smtp))
    assert totals.sent == 1
    [row] = await emails(runtime, corp)
    assert row.status is EmailStatus.SENT and row.attempts == 2 and row.claim_token is None


async def test_the_file_backend_writes_what_was_sent(runtime: Runtime, tmp_path: object) -> None:
    await load_catalog(runtime)
    corp = await create_client(runtime, locale="en")
    await publish_and_handle(runtime, corp, "LIMIT_REACHED", LIMIT)
    backend = FileBackend(str(tmp_path))
    assert (await dispatch(runtime, backend)).sent == 1
    [path] = list(__import__("pathlib").Path(str(tmp_path)).rglob("*.eml"))
    text = path.read_text(encoding="utf-8")
    assert "X-Engage-Notice: LimitIsOverNotice" in text and "Content-Language: en" in text
