"""app.integrations.mail against a real SMTP server on loopback (tests/smtp_server.py)."""

# Russian text throughout: its Cyrillic letters are not look-alikes of Latin ones.
# ruff: noqa: RUF001

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP, compat32
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import given
from hypothesis import strategies as st

from app.integrations.mail import (
    DeliveryError,
    FileBackend,
    OutgoingEmail,
    SmtpBackend,
    build_message,
    mail_backend,
)
from tests.conftest import test_settings as make_settings
from tests.smtp_server import SmtpServer, refused_port

# Python 3.11's own folder drops the space before "пополните" in this one (module docstring).
SUBJECT = "Ваш корпоративный счёт ООО «Ромашка» почти исчерпан — пополните его до конца недели"
TEXT = "Здравствуйте!\n\nБаланс корпоративного счёта: 1 000 ₽.\n.\nС уважением, engage\n"
HTML = "<p>Здравствуйте!</p>\n<p>Баланс: <b>1&nbsp;000 ₽</b> — <a href='https://x'>счёт</a></p>\n"


def outgoing(number: int = 0, **changes: Any) -> OutgoingEmail:
    email = OutgoingEmail(
        message_id=f"<notice-{number}@engage>",
        sender="Энгейдж <noreply@engage.test>",
        recipients=("Иван Петров <ivan@corp.test>", "buh@corp.test"),
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
        language="ru",
        headers={"X-Engage-Notice": "LowBalanceNotice"},
    )
    return replace(email, **changes)


def backend_for(smtp: SmtpServer, *, timeout: float = 5.0) -> SmtpBackend:
    return SmtpBackend.from_url(smtp.url, timeout=timeout, validate_certs=False)


async def send(backend: SmtpBackend | FileBackend, *emails: OutgoingEmail) -> None:
    async with backend.session() as session:
        for email in emails:
            await session.send(email)


async def delivery_error(backend: SmtpBackend, email: OutgoingEmail) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await send(backend, email)
    return caught.value


# Delivery


async def test_a_russian_email_arrives_intact() -> None:
    with SmtpServer() as smtp:
        await send(backend_for(smtp), outgoing())
        [received] = await smtp.wait_for(1)

    assert received.mail_from == "noreply@engage.test"
    assert received.rcpt_tos == ["ivan@corp.test", "buh@corp.test"]
    message = received.message
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Энгейдж", "noreply@engage.test")
    to = [(a.display_name, a.addr_spec) for a in message["To"].addresses]
    assert to == [("Иван Петров", "ivan@corp.test"), ("", "buh@corp.test")]
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == "<notice-0@engage>"
    assert message["Content-Language"] == "ru"
    assert message["X-Engage-Notice"] == "LowBalanceNotice"
    assert message["Date"].datetime.tzinfo is not None
    assert message.get_content_type() == "multipart/alternative"
    parts = [(p.get_content_type(), p.get_content_charset()) for p in message.iter_parts()]
    assert parts == [("text/plain", "utf-8"), ("text/html", "utf-8")]
    assert received.body("plain") == TEXT
    assert received.body("html") == HTML


async def test_a_session_sends_everything_over_one_connection() -> None:
    with SmtpServer() as smtp:
        backend = backend_for(smtp)
        await send(backend, *(outgoing(n) for n in range(10)))
        received = await smtp.wait_for(10)
        assert smtp.connections == 1
    assert backend.connections_opened == 1
    assert [r.message["Message-ID"] for r in received] == [
        f"<notice-{n}@engage>" for n in range(10)
    ]


async def test_each_session_has_its_own_connection() -> None:
    with SmtpServer() as smtp:
        backend = backend_for(smtp)
        await send(backend, outgoing(1))
        await send(backend, outgoing(2))
        await smtp.wait_for(2)
        assert smtp.connections == 2
    assert backend.connections_opened == 2


async def test_concurrent_sends_of_a_session_take_turns_on_its_connection() -> None:
    with SmtpServer() as smtp:
        backend = backend_for(smtp)
        async with backend.session() as session:
            await asyncio.gather(*(session.send(outgoing(n)) for n in range(5)))
        await smtp.wait_for(5)
    assert backend.connections_opened == 1


async def test_a_send_cancelled_mid_transaction_leaves_the_session_usable() -> None:
    with SmtpServer() as smtp:
        smtp.delay_seconds = 5.0
        async with backend_for(smtp).session() as session:
            sending = asyncio.create_task(session.send(outgoing(1)))
            await asyncio.sleep(0.3)
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            smtp.delay_seconds = 0.0
            await session.send(outgoing(2))
        [received] = await smtp.wait_for(1)
        assert smtp.connections == 2
    assert received.message["Message-ID"] == "<notice-2@engage>"


async def test_a_451_is_transient_and_the_next_send_reconnects() -> None:
    with SmtpServer() as smtp:
        backend = backend_for(smtp)
        smtp.fail_next(1, 451, "Try again later")
        async with backend.session() as session:
            with pytest.raises(DeliveryError) as caught:
                await session.send(outgoing(1))
            await session.send(outgoing(2))
        [received] = await smtp.wait_for(1)
        assert smtp.connections == 2
    assert (caught.value.permanent, caught.value.code) == (False, 451)
    assert received.message["Message-ID"] == "<notice-2@engage>"
    assert backend.connections_opened == 2


async def test_a_550_is_permanent() -> None:
    with SmtpServer() as smtp:
        smtp.fail_next(1, 550, "Message rejected")
        error = await delivery_error(backend_for(smtp), outgoing())
        assert smtp.messages == []
    assert (error.permanent, error.code) == (True, 550)


async def test_a_refused_connection_is_transient() -> None:
    backend = SmtpBackend("127.0.0.1", refused_port(), timeout=2.0)
    error = await delivery_error(backend, outgoing())
    assert (error.permanent, error.code) == (False, None)
    assert backend.connections_opened == 0


async def test_a_slow_server_times_out_quickly_and_transiently() -> None:
    with SmtpServer() as smtp:
        smtp.delay_seconds = 3.0
        started = time.monotonic()
        error = await delivery_error(backend_for(smtp, timeout=0.5), outgoing())
        elapsed = time.monotonic() - started
    assert not error.permanent
    assert elapsed < 2.0


async def test_a_connection_dropped_during_data_is_transient_and_replaced() -> None:
    with SmtpServer() as smtp:
        smtp.disconnect_next()
        async with backend_for(smtp).session() as session:
            with pytest.raises(DeliveryError) as caught:
                await session.send(outgoing(1))
            await session.send(outgoing(2))
        [received] = await smtp.wait_for(1)
    assert not caught.value.permanent
    assert received.message["Message-ID"] == "<notice-2@engage>"


async def test_a_connection_the_server_closed_while_idle_is_replaced_silently() -> None:
    with SmtpServer() as smtp:
        backend = backend_for(smtp)
        async with backend.session() as session:
            await session.send(outgoing(1))
            smtp.close_connections()
            await asyncio.sleep(0.1)  # the client's loop sees the connection go
            await session.send(outgoing(2))
        await smtp.wait_for(2)
        assert smtp.connections == 2
    assert backend.connections_opened == 2


async def test_every_recipient_refused_with_5xx_is_permanent() -> None:
    with SmtpServer() as smtp:
        smtp.refuse_recipient("ivan@corp.test", 550)
        smtp.refuse_recipient("buh@corp.test", 553)
        error = await delivery_error(backend_for(smtp), outgoing())
    assert (error.permanent, error.code) == (True, 550)


async def test_every_recipient_refused_with_a_4xx_among_them_is_transient() -> None:
    with SmtpServer() as smtp:
        smtp.refuse_recipient("ivan@corp.test", 550)
        smtp.refuse_recipient("buh@corp.test", 450, "Mailbox busy")
        error = await delivery_error(backend_for(smtp), outgoing())
    assert (error.permanent, error.code) == (False, 450)


async def test_a_message_some_recipients_accepted_is_delivered() -> None:
    with SmtpServer() as smtp:
        smtp.refuse_recipient("ivan@corp.test", 550)
        await send(backend_for(smtp), outgoing())
        [received] = await smtp.wait_for(1)
    assert received.rcpt_tos == ["buh@corp.test"]


# Authentication and TLS


async def test_the_right_credentials_deliver() -> None:
    with SmtpServer(auth=("mailer@engage", "p@ss:w/rd%")) as smtp:
        assert "p%40ss%3Aw%2Frd%25" in smtp.url  # decoded by from_url
        await send(backend_for(smtp), outgoing())
        await smtp.wait_for(1)


async def test_wrong_credentials_are_permanent() -> None:
    with SmtpServer(auth=("mailer", "right")) as smtp:
        backend = SmtpBackend("127.0.0.1", smtp.port, username="mailer", password="wrong")
        error = await delivery_error(backend, outgoing())
        assert smtp.messages == []
    assert (error.permanent, error.code) == (True, 535)


async def test_no_credentials_where_the_server_requires_them_is_permanent() -> None:
    with SmtpServer(auth=("mailer", "right")) as smtp:
        error = await delivery_error(SmtpBackend("127.0.0.1", smtp.port), outgoing())
    assert (error.permanent, error.code) == (True, 530)


async def test_starttls_with_auth_delivers() -> None:
    with SmtpServer(starttls=True, auth=("mailer", "secret")) as smtp:
        assert smtp.url.endswith("?starttls=true")
        await send(backend_for(smtp), outgoing())
        [received] = await smtp.wait_for(1)
    assert received.message["Subject"] == SUBJECT


async def test_implicit_tls_delivers() -> None:
    with SmtpServer(implicit_tls=True) as smtp:
        assert smtp.url.startswith("smtps://")
        await send(backend_for(smtp), outgoing())
        await smtp.wait_for(1)


async def test_an_untrusted_certificate_is_refused_when_validating() -> None:
    with SmtpServer(starttls=True) as smtp:
        backend = SmtpBackend.from_url(smtp.url, timeout=5.0, validate_certs=True)
        error = await delivery_error(backend, outgoing())
        assert smtp.messages == []
    assert not error.permanent


# The message


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Subject\r\nBcc: x@evil.test"},
        {"subject": "line\nbreak"},
        {"subject": "separator\u2028"},
        {"sender": "noreply@engage.test\r\nBcc: x@evil.test"},
        {"recipients": ("ivan@corp.test\nBcc: x@evil.test",)},
        {"headers": {"X-Engage-Notice": "a\r\nBcc: x@evil.test"}},
        {"headers": {"X-Engage\r\nBcc": "x@evil.test"}},
        {"message_id": "<a@b>\r\nBcc: x@evil.test"},
        {"language": "ru\r\nBcc: x@evil.test"},
    ],
)
async def test_header_injection_is_refused_and_nothing_is_sent(changes: dict[str, Any]) -> None:
    with SmtpServer() as smtp:
        error = await delivery_error(backend_for(smtp), outgoing(**changes))
        assert smtp.connections == 0
        assert smtp.messages == []
    assert error.permanent


@pytest.mark.parametrize(
    "changes",
    [
        {"recipients": ()},
        {"recipients": ("not an address",)},
        {"recipients": ("Doe, John <john@corp.test>",)},  # unquoted comma: two addresses
        {"sender": "noreply@"},
        {"message_id": "no-angle-brackets@engage"},
        {"language": "русский"},
        {"headers": {"Subject": "a second subject"}},
        {"headers": {"Bcc": "x@evil.test"}},
        {"headers": {"X Spaced": "value"}},
    ],
)
def test_a_malformed_email_is_refused_permanently(changes: dict[str, Any]) -> None:
    with pytest.raises(DeliveryError) as caught:
        build_message(outgoing(**changes))
    assert caught.value.permanent


def test_the_message_is_dated_and_quotes_display_names() -> None:
    sent_at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    email = outgoing(recipients=('"Doe, John" <john@corp.test>',))
    message = build_message(email, date=sent_at)
    assert message["Date"] == "Sat, 01 Mar 2025 09:30:00 +0000"
    parsed = message_from_bytes(message.as_bytes(), policy=default_policy)
    assert [a.display_name for a in parsed["To"].addresses] == ["Doe, John"]
    with pytest.raises(ValueError, match="aware"):
        build_message(email, date=datetime(2025, 3, 1))


_words = st.one_of(
    st.text(alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБЁ", min_size=1, max_size=25),
    st.text(alphabet="abcXYZ019.,:;!?()-'%&«»—=?_", min_size=1, max_size=25),
    st.text(alphabet="ab🚕é\t", min_size=1, max_size=8),
)
_phrases = st.tuples(st.lists(_words, min_size=1, max_size=12), st.sampled_from(" ,—")).map(
    lambda words_and_separator: words_and_separator[1].join(words_and_separator[0])
)
_names = st.lists(
    st.text(
        alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБЁabcXYZ019-«»—é🚕", min_size=1, max_size=20
    ),
    min_size=1,
    max_size=6,
).map(" ".join)


def rfc2047_decoded(raw: bytes, name: str) -> str:
    """The header as RFC 2047 reads it. Python's address parser is no judge: it keeps the
    space between two encoded words of a display name, which RFC 2047 says to drop."""
    parsed = message_from_bytes(raw, policy=compat32)
    value = parsed.get(name, "").replace("\r\n", "").replace("\n", "")  # unfolded
    return str(make_header(decode_header(value)))


@given(subject=_phrases, name=_names, mode=st.sampled_from(["7bit", "8bit", "smtputf8"]))
def test_headers_arrive_exactly_as_given(subject: str, name: str, mode: str) -> None:
    recipients = (f'"{name}" <ivan@corp.test>', "buh@corp.test")
    email = outgoing(subject=subject, recipients=recipients, headers={"X-Engage-Title": subject})
    raw = flatten_message(
        build_message(email), utf8=mode == "smtputf8", cte_type="7bit" if mode == "7bit" else "8bit"
    )
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    parsed = message_from_bytes(raw, policy=default_policy)
    assert parsed["Subject"] == subject
    assert parsed["X-Engage-Title"] == subject
    assert getaddresses([rfc2047_decoded(raw, "To")]) == [
        (name, "ivan@corp.test"),
        ("", "buh@corp.test"),
    ]


def test_long_russian_headers_fold_within_78_columns() -> None:
    name = "Бухгалтерия общества с ограниченной ответственностью «Ромашка-Трейд»"
    email = outgoing(recipients=(f"{name} <buh@corp.test>", "Иван Петров <ivan@corp.test>"))
    raw = build_message(email).as_bytes(policy=SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert message_from_bytes(raw, policy=default_policy)["Subject"] == SUBJECT
    assert getaddresses([rfc2047_decoded(raw, "To")]) == [
        (name, "buh@corp.test"),
        ("Иван Петров", "ivan@corp.test"),
    ]


# from_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.corp.test", ("mail.corp.test", 25, None, None, False, False)),
        ("smtp://mail.corp.test:2525/", ("mail.corp.test", 2525, None, None, False, False)),
        (
            "smtp://user%40corp:p%3Ass%2Fw@mail.corp.test:587?starttls=true",
            ("mail.corp.test", 587, "user@corp", "p:ss/w", False, True),
        ),
        ("smtp://u@h?starttls=FALSE", ("h", 25, "u", None, False, False)),
        ("smtp://u:@h", ("h", 25, "u", "", False, False)),
        ("smtps://u:pw@h", ("h", 465, "u", "pw", True, False)),
        ("smtps://[::1]:4650", ("::1", 4650, None, None, True, False)),
    ],
)
def test_from_url_reads_the_url(url: str, expected: tuple[object, ...]) -> None:
    backend = SmtpBackend.from_url(url, timeout=3.0, validate_certs=False)
    assert (
        backend.host,
        backend.port,
        backend.username,
        backend.password,
        backend.use_tls,
        backend.start_tls,
    ) == expected
    assert (backend.timeout, backend.validate_certs, backend.name) == (3.0, False, "smtp")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://mail.corp.test", "smtp:// or smtps://"),
        ("mail.corp.test:25", "smtp:// or smtps://"),
        ("smtp://", "no host"),
        ("smtp://u:secret@h:port", "port"),
        ("smtp://u:secret@h:70000", "port"),
        ("smtp://h:0", "port"),
        ("smtp://h/path", "no path"),
        ("smtp://h?tls=true", "unknown option"),
        ("smtp://h?starttls=yes", "true or false"),
        ("smtps://h?starttls=true", "contradicts"),
        ("smtp://:secret@h", "no user"),
    ],
)
def test_from_url_names_what_is_wrong(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        SmtpBackend.from_url(url, timeout=3.0, validate_certs=True)
    assert "secret" not in str(caught.value)


def test_the_password_stays_out_of_the_repr() -> None:
    backend = SmtpBackend.from_url("smtp://u:secret@h", timeout=1.0, validate_certs=True)
    assert "secret" not in repr(backend)


# Files


def files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def read_eml(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


async def test_the_file_backend_writes_a_parseable_eml(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / "mail")
    email = outgoing(message_id="<3f2a/+x@engage>")
    await send(backend, email)

    today = datetime.now(UTC).date().isoformat()
    path = tmp_path / "mail" / today / "_3f2a__x_engage_.eml"
    assert backend.path_for(email) == path
    assert files(tmp_path) == [f"mail/{today}/_3f2a__x_engage_.eml"]  # no temporary file left
    message = read_eml(path)
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"] == "<3f2a/+x@engage>"
    plain, html = (part.get_content().replace("\r\n", "\n") for part in message.iter_parts())
    assert (plain, html) == (TEXT, HTML)


async def test_the_same_message_twice_leaves_one_file(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path)
    await send(backend, outgoing(1), outgoing(1), outgoing(2))
    today = datetime.now(UTC).date().isoformat()
    assert files(tmp_path) == [f"{today}/_notice-1_engage_.eml", f"{today}/_notice-2_engage_.eml"]


def test_the_file_layout_is_by_day(tmp_path: Path) -> None:
    backend = FileBackend(str(tmp_path))
    path = backend.path_for(outgoing(7), day=date(2025, 1, 31))
    assert path == tmp_path / "2025-01-31" / "_notice-7_engage_.eml"
    long_id = f"<{'x' * 300}@engage>"
    assert len(backend.path_for(outgoing(message_id=long_id)).name) < 255


async def test_an_unwritable_directory_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DeliveryError) as caught:
        await send(FileBackend(blocker), outgoing())
    assert not caught.value.permanent


# Choosing the backend


def test_smtp_url_picks_the_smtp_backend() -> None:
    settings = make_settings(
        SMTP_URL="smtps://mailer:pw@mail.corp.test",
        SMTP_TIMEOUT_SECONDS=4,
        SMTP_VALIDATE_CERTS=False,
    )
    backend = mail_backend(settings)
    assert isinstance(backend, SmtpBackend)
    assert (backend.host, backend.port, backend.use_tls) == ("mail.corp.test", 465, True)
    assert (backend.username, backend.password) == ("mailer", "pw")
    assert (backend.timeout, backend.validate_certs) == (4.0, False)


@pytest.mark.parametrize("smtp_url", [None, ""])
def test_no_smtp_url_picks_the_file_backend(smtp_url: str | None, tmp_path: Path) -> None:
    backend = mail_backend(make_settings(SMTP_URL=smtp_url, MAIL_FILE_DIR=str(tmp_path)))
    assert isinstance(backend, FileBackend)
    assert (backend.name, backend.directory) == ("file", tmp_path)
