"""Outgoing email: the MIME message, and its delivery over SMTP or into `.eml` files.

Decisions:

- Every email is multipart/alternative (text/plain, then text/html), both UTF-8. Bodies use
  the stdlib's transfer-encoding choice: 8bit for short lines, base64 or quoted-printable for
  long ones; aiosmtplib downgrades 8bit to base64 for a server without 8BITMIME. On the wire
  (and in the files) lines end in CRLF, so a receiver reads the text with CRLF line endings.
- Headers are folded by this module wherever they carry non-ASCII text. Python 3.11's folder
  (email.policy.default) puts the space at a fold between two RFC 2047 encoded words outside
  both, where decoders drop it: a long Russian subject arrives with two words glued together.
  Such Subject, address and extra headers are folded with `email.header.Header` instead, which
  keeps every space inside an encoded word; ASCII headers keep the stdlib folding. Encoded
  words are used even when aiosmtplib sends SMTPUTF8 (a non-ASCII address), whose raw UTF-8
  folding loses spaces and quotes too. ASCII text
  containing "=?" (which a decoder would take for an encoded word) or edge whitespace (which
  unfolding strips) is encoded too, so every header value arrives exactly as given.
- A header value with a line break or another control character is refused
  (DeliveryError(permanent=True)) rather than cleaned: it is a bug upstream, or header
  injection. So are a malformed address, Message-ID or language tag, and an extra header that
  would replace one this module sets.
- DeliveryError.permanent tells the dispatcher whether a retry can help. SMTP replies decide
  by their class (4xx transient, 5xx permanent); network trouble (refused connection,
  timeout, disconnect, TLS failure, a server refusing the session at its greeting) is
  transient. An authentication failure is permanent although it concerns the configuration,
  not the message: a retry with the same credentials fails the same way, so every message of
  the batch fails until SMTP_URL is fixed and the failed emails are queued again. A server
  that cannot take the message as configured (SMTPUTF8 or AUTH not supported) is permanent too.
- A recipient refused while others were accepted does not fail the send: the message was
  delivered, and a retry would deliver it twice to the others. The refusal is logged.
- One SMTP connection per session, opened at the session's first send and reused by the
  following ones; sends of one session take turns on it. After any failure it is closed,
  since its state is unknown after a timeout and a 4xx may be the server shedding load, and the
  next send opens a new one. A connection the server closed while idle is replaced the same
  way. A timeout after DATA was sent may hide a delivered message: the retry can deliver it
  again, under the same Message-ID.
- The timeout bounds each SMTP operation (connect, each command), not a whole send.
- The SMTP URL carries the password: error messages never repeat the URL.
- The file backend (the embedded default) writes `<dir>/<UTC date>/<safe Message-ID>.eml`
  atomically (a temporary file, then os.replace), off the event loop: a message sent twice on
  one day leaves one file.
- Backends hold no connection or event-loop state and can be shared; a session belongs to the
  event loop that opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import (
    Address,
    AddressHeader,
    BaseHeader,
    HeaderRegistry,
    UnstructuredHeader,
)
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.policy import default as default_policy
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import aiosmtplib
import structlog

from app.settings import Settings

log = structlog.get_logger("engage.mail")


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    message_id: str  # the full Message-ID value, "<…@…>", stable per queued email
    sender: str  # "Name <addr>" or "addr"
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str
    language: str  # the Content-Language header: "ru", "en"
    headers: Mapping[str, str] = field(default_factory=dict)  # extra headers


class DeliveryError(Exception):
    """A message was not delivered.

    permanent=True: retrying cannot help (a 5xx reply, every recipient refused with 5xx, an
    authentication failure, a malformed message). permanent=False: a retry may succeed
    (connection refused, timeout, disconnect, a 4xx reply). `code` is the SMTP reply code.
    """

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class MailSession(Protocol):
    async def send(self, email: OutgoingEmail) -> None:
        """Deliver one message; raises DeliveryError."""

    async def send_many(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryError | None]:
        """Deliver each message in turn: None for a delivered one, else its error."""


class MailBackend(Protocol):
    name: str  # "smtp" or "file"

    def session(self) -> AbstractAsyncContextManager[MailSession]:
        """One session per dispatch batch (SMTP: one connection for all of its sends)."""


# Building the message


def _needs_encoded_words(text: str) -> bool:
    return not text.isascii() or "=?" in text or text != text.strip()


def _encoded_words(text: str, *, name: str | None, linesep: str) -> str:
    return Header(text, "utf-8", header_name=name).encode(linesep=linesep)


class _TextHeader(UnstructuredHeader, BaseHeader):
    def fold(self, *, policy: Policy) -> str:
        if not _needs_encoded_words(str(self)):
            return super().fold(policy=policy)
        value = _encoded_words(str(self), name=self.name, linesep=policy.linesep)
        return f"{self.name}: {value}{policy.linesep}"


class _UniqueTextHeader(_TextHeader):
    max_count = 1


def _format_address(address: Address, linesep: str, header_name: str | None) -> str:
    """One address of a folded header: the first one after "Name: " (header_name), the
    others on their own continuation lines."""
    if not _needs_encoded_words(address.display_name):
        return str(address)
    name = _encoded_words(address.display_name, name=header_name, linesep=linesep)
    angle_addr = f"<{address.addr_spec}>"
    last_line = name.rsplit(linesep, 1)[-1]
    indent = 0 if linesep in name else len(header_name) + 2 if header_name else 1
    if indent + len(last_line) + len(angle_addr) + 2 > 78:  # with a space and a comma
        return f"{name}{linesep} {angle_addr}"
    return f"{name} {angle_addr}"


# The registry would combine the two bases the same way; typeshed gives them clashing init()s.
class _UniqueAddressHeader(AddressHeader, BaseHeader):  # type: ignore[misc]
    max_count = 1

    def fold(self, *, policy: Policy) -> str:
        names = [address.display_name for address in self.addresses]
        if not any(map(_needs_encoded_words, names)):
            return super().fold(policy=policy)
        separator = f",{policy.linesep} "
        value = separator.join(
            _format_address(address, policy.linesep, self.name if index == 0 else None)
            for index, address in enumerate(self.addresses)
        )
        return f"{self.name}: {value}{policy.linesep}"


class _CachingRegistry(HeaderRegistry):
    """The standard registry builds a new header class with `type()` on every lookup (every
    header set or parsed): a third of a message's build time. The classes are stateless, so
    one per header name is kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


def _header_registry() -> HeaderRegistry:
    registry = _CachingRegistry(default_class=_TextHeader)
    registry.map_to_type("subject", _UniqueTextHeader)
    for name in ("from", "to", "cc", "reply-to"):
        registry.map_to_type(name, _UniqueAddressHeader)
    return registry


_POLICY = default_policy.clone(header_factory=_header_registry())
# Set by build_message (or by set_content); extra headers may not replace them.
_RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "content-language"}
    | {"mime-version", "content-type", "content-transfer-encoding"}
)
# Control characters other than tab, including every line break str.splitlines() knows.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_HEADER_NAME = re.compile(r"[!-9;-~]+")
_MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")


def _malformed(email: OutgoingEmail, why: str) -> DeliveryError:
    return DeliveryError(f"malformed message {email.message_id!r}: {why}", permanent=True)


def _header_values(email: OutgoingEmail) -> list[tuple[str, str]]:
    values = [("From", email.sender), ("Subject", email.subject)]
    values += [("To", recipient) for recipient in email.recipients]
    values += [("Message-ID", email.message_id), ("Content-Language", email.language)]
    return values + list(email.headers.items())


def _check_headers(email: OutgoingEmail) -> None:
    for name, value in _header_values(email):
        if _CONTROL.search(name) or _CONTROL.search(value):
            raise _malformed(email, f"{name!r}: a line break or control character")
    for name in email.headers:
        if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
            raise _malformed(email, f"{name!r} cannot be an extra header")
    if not _MESSAGE_ID.fullmatch(email.message_id):
        raise _malformed(email, "the Message-ID must look like <id@domain>")
    if not _LANGUAGE.fullmatch(email.language):
        raise _malformed(email, f"{email.language!r} is not a language tag")
    if not email.recipients:
        raise _malformed(email, "no recipients")


@functools.lru_cache(maxsize=4096)
def _parsed_address(text: str) -> Address | str:
    """The one address in `text`, or why not (cached: the sender and a client's contacts
    come back in every batch, and an Address is immutable)."""
    try:
        header = _POLICY.header_factory("to", text)
    except (ValueError, IndexError, HeaderParseError):
        return "is not an email address"
    addresses = header.addresses
    if header.defects or len(addresses) != 1 or not addresses[0].domain:
        return "is not one email address"
    return addresses[0]


def _address(email: OutgoingEmail, text: str) -> Address:
    parsed = _parsed_address(text)
    if isinstance(parsed, str):
        raise _malformed(email, f"{text!r} {parsed}")
    return parsed


def build_message(email: OutgoingEmail, *, date: datetime | None = None) -> EmailMessage:
    """The MIME message for `email`, dated `date` (an aware datetime; default: now).

    Raises DeliveryError(permanent=True) for a malformed email (see the module docstring).
    """
    _check_headers(email)
    sent_at = date or datetime.now(UTC)
    if sent_at.tzinfo is None:
        raise ValueError("build_message needs an aware datetime")
    message = EmailMessage(policy=_POLICY)
    message["From"] = _address(email, email.sender)
    message["To"] = tuple(_address(email, recipient) for recipient in email.recipients)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = email.message_id
    message.set_content(email.text, subtype="plain", charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    # After the parts: making the message multipart moves Content-* headers into its first part.
    message["Content-Language"] = email.language
    for name, value in email.headers.items():
        message[name] = value
    return message


def _envelope(email: OutgoingEmail) -> tuple[str, list[str]]:
    recipients = [_address(email, recipient).addr_spec for recipient in email.recipients]
    return _address(email, email.sender).addr_spec, recipients


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


async def send_each(
    session: MailSession, emails: Sequence[OutgoingEmail]
) -> list[DeliveryError | None]:
    """`send_many` for sessions that send one at a time."""
    results: list[DeliveryError | None] = []
    for email in emails:
        try:
            await session.send(email)
        except DeliveryError as exc:
            results.append(exc)
        else:
            results.append(None)
    return results


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


# Files


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def _safe_name(message_id: str) -> str:
    name = _UNSAFE_FILENAME.sub("_", message_id)
    if len(name) <= 200:
        return name
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:16]
    return f"{name[:180]}_{digest}"  # within any filesystem's 255-byte name limit


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)  # only left when the write failed


class FileBackend:
    """Each message as an .eml file (the bytes SMTP would carry), for development."""

    name: str = "file"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path_for(self, email: OutgoingEmail, *, day: date | None = None) -> Path:
        """Where `email` sent on `day` (default: today, UTC) is written."""
        if not _MESSAGE_ID.fullmatch(email.message_id):
            raise _malformed(email, "the Message-ID must look like <id@domain>")
        folder = (day or datetime.now(UTC).date()).isoformat()
        return self.directory / folder / f"{_safe_name(email.message_id)}.eml"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        yield self

    async def send_many(self, emails: Sequence[OutgoingEmail]) -> list[DeliveryError | None]:
        return await send_each(self, emails)

    async def send(self, email: OutgoingEmail) -> None:
        sent_at = datetime.now(UTC)
        data = build_message(email, date=sent_at).as_bytes(policy=SMTP)
        path = self.path_for(email, day=sent_at.date())
        try:
            await asyncio.to_thread(_write_atomically, path, data)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc}", permanent=False) from exc


def mail_backend(settings: Settings) -> MailBackend:
    """SMTP when SMTP_URL is set, else .eml files under MAIL_FILE_DIR."""
    if settings.smtp_url:
        return SmtpBackend.from_url(
            settings.smtp_url,
            timeout=settings.smtp_timeout_seconds,
            validate_certs=settings.smtp_validate_certs,
        )
    return FileBackend(settings.mail_file_dir)
