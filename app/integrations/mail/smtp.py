"""The SMTP backend (aiosmtplib): one connection per session, errors classified."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from email.message import EmailMessage
from types import TracebackType
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import aiosmtplib
import structlog

from app.integrations.mail.base import DeliveryError, MailSession, OutgoingEmail
from app.integrations.mail.message import _envelope, build_message

log = structlog.get_logger("engage.mail")


# SMTP


# What a send can raise besides bugs: TimeoutError and every aiosmtplib connection error are
# OSErrors; ValueError is an address aiosmtplib will not put on a command line.
_SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, ValueError)


def _recipients_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> DeliveryError:
    codes = [refusal.code for refusal in exc.recipients]
    permanent = all(code >= 500 for code in codes)
    detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    message = f"every recipient refused ({detail})"
    return DeliveryError(message, permanent=permanent, code=min(codes))


def _smtp_failure(exc: Exception) -> DeliveryError:
    """The DeliveryError for an exception of a send (the table in the module docstring)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return _recipients_refused(exc)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return DeliveryError(f"server refused the session: {exc}", permanent=False, code=exc.code)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(f"SMTP authentication failed: {exc}", permanent=True, code=exc.code)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        message = f"SMTP server replied {exc.code} {exc.message}"
        return DeliveryError(message, permanent=exc.code >= 500, code=exc.code)
    if isinstance(exc, OSError):
        return DeliveryError(f"SMTP connection failed: {exc}", permanent=False)
    return DeliveryError(f"SMTP server cannot take the message: {exc}", permanent=True)


class SmtpBackend:
    """Delivery over SMTP (aiosmtplib): plain, STARTTLS or implicit TLS, optional AUTH."""

    name: str = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool = False,
        timeout: float = 10.0,
        validate_certs: bool = True,
    ) -> None:
        if use_tls and start_tls:
            raise ValueError("implicit TLS and STARTTLS exclude each other")
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.connections_opened = 0  # connections established (greeting, TLS, login done)

    @classmethod
    def from_url(cls, url: str, *, timeout: float, validate_certs: bool) -> SmtpBackend:
        """smtp://[user[:password]@]host[:port][?starttls=true|false] (port 25, no STARTTLS
        by default) or smtps://… (implicit TLS, port 465). ValueError says what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP_URL must be smtp:// or smtps://, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("SMTP_URL names no host")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError("SMTP_URL takes no path and no fragment")
        implicit_tls = parts.scheme == "smtps"
        start_tls = _starttls_option(parts.query)
        if implicit_tls and start_tls:
            raise ValueError("SMTP_URL: smtps:// is implicit TLS, starttls=true contradicts it")
        username, password = _credentials(parts)
        return cls(
            parts.hostname,
            _port(parts, 465 if implicit_tls else 25),
            username=username,
            password=password,
            use_tls=implicit_tls,
            start_tls=start_tls,
            timeout=timeout,
            validate_certs=validate_certs,
        )

    def session(self) -> AbstractAsyncContextManager[MailSession]:
        return _SmtpSession(self)

    async def connect(self) -> aiosmtplib.SMTP:
        """A new connection, ready for MAIL FROM (sessions call this)."""
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,  # never None: no opportunistic STARTTLS
            validate_certs=self.validate_certs,
            timeout=self.timeout,
        )
        await client.connect()
        self.connections_opened += 1
        return client

    def __repr__(self) -> str:  # without the password
        tls = "implicit TLS" if self.use_tls else "STARTTLS" if self.start_tls else "plain"
        return f"SmtpBackend({self.host}:{self.port}, {tls}, user={self.username!r})"


def _starttls_option(query: str) -> bool:
    start_tls = False
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "starttls":
            raise ValueError(f"SMTP_URL: unknown option {key!r} (known: starttls)")
        if value.lower() not in ("true", "false"):
            raise ValueError(f"SMTP_URL: starttls must be true or false, not {value!r}")
        start_tls = value.lower() == "true"
    return start_tls


def _port(parts: SplitResult, default: int) -> int:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("SMTP_URL: the port must be a number from 1 to 65535")
    return port or default


def _credentials(parts: SplitResult) -> tuple[str | None, str | None]:
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise ValueError("SMTP_URL has a password but no user")
    return username, password


_Built = tuple[OutgoingEmail, EmailMessage | None, DeliveryError | None]


async def _build_each(emails: Sequence[OutgoingEmail], built: asyncio.Queue[_Built]) -> None:
    for email in emails:
        try:
            item: _Built = (email, build_message(email), None)
        except DeliveryError as exc:
            item = (email, None, exc)
        await built.put(item)


class _SmtpSession:
    def __init__(self, backend: SmtpBackend) -> None:
        self._backend = backend
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> _SmtpSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._quit()

    async def send(self, email: OutgoingEmail) -> None:
        await self._send_built(email, build_message(email), _envelope(email))

    async def send_many(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryError | None]:
        """Send in order over the one connection, building each next message while the
        server answers the current one (building a MIME message costs about as much CPU as
        sending it: overlapping them nearly doubles a batch's rate)."""
        built: asyncio.Queue[_Built] = asyncio.Queue(maxsize=1)
        producer = asyncio.create_task(_build_each(emails, built))
        results: list[DeliveryError | None] = []
        try:
            for _ in emails:
                email, message, error = await built.get()
                if message is None:
                    results.append(error)
                    continue
                try:
                    await self._send_built(email, message, _envelope(email))
                except DeliveryError as exc:
                    results.append(exc)
                else:
                    results.append(None)
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
        return results

    async def _send_built(
        self, email: OutgoingEmail, message: EmailMessage, envelope: tuple[str, list[str]]
    ) -> None:
        sender, recipients = envelope
        async with self._lock:
            try:
                client = await self._connected()
                refused, _ = await client.send_message(
                    message, sender=sender, recipients=recipients
                )
            except _SMTP_ERRORS as exc:
                self._drop()
                raise _smtp_failure(exc) from exc
            except asyncio.CancelledError:
                self._drop()  # cancelled mid-transaction: the connection is unusable
                raise
        if refused:
            codes = {address: response.code for address, response in refused.items()}
            log.warning("mail.recipients_refused", message_id=email.message_id, refused=codes)

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            self._drop()
            self._client = await self._backend.connect()
        return self._client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _quit(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except _SMTP_ERRORS:
            pass  # the messages were sent; a failed goodbye changes nothing
        finally:
            client.close()
