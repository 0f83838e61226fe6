"""A real SMTP server on loopback (aiosmtpd) for the mail tests, with fault injection.

    with SmtpServer() as smtp:                 # a sync context manager
        backend = SmtpBackend.from_url(smtp.url, timeout=5.0, validate_certs=False)
        ...
        received = await smtp.wait_for(1)

The server runs its own event loop in a daemon thread (as aiosmtpd's Controller does, whose
fixed port and probe connection do not suit these tests): it answers whatever the test's event
loop is doing, serves sync tests and other processes alike (SMTP_URL=smtp.url), and does not
care about pytest-asyncio's loop scope. The test thread and the server thread share its state
under a lock; `messages` is appended to by the server thread.

Faults: `fail_next` (DATA replies with a code), `disconnect_next` (DATA drops the
connection), `delay_seconds` (DATA answers late), `refuse_recipient` (RCPT replies with a code),
`close_connections` (the server closes idle connections, as its idle timeout would). A DATA
that failed, or whose client left before the answer, is not in `messages`.
TLS (a self-signed certificate for 127.0.0.1 and localhost): `starttls=True` offers STARTTLS,
`implicit_tls=True` listens with TLS; clients connect with validate_certs=False.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
_held_ports: list[socket.socket] = []


def refused_port() -> int:
    """A loopback port nothing listens on: it stays bound (not listening) for the whole run,
    so no other test can take it and every connection to it is refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind((HOST, 0))
    _held_ports.append(holder)
    port: int = holder.getsockname()[1]
    return port


def self_signed_tls_context() -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(key, hashes.SHA256())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as directory:  # load_cert_chain only reads files
        cert_path, key_path = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(cert_path, key_path)
    return context


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage  # parsed with email.policy.default
    mail_options: list[str] = field(default_factory=list)

    def body(self, subtype: str) -> str:
        """The text/<subtype> part, with LF line endings (SMTP carries CRLF)."""
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part"
        content: str = part.get_content()
        return content.replace("\r\n", "\n")


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook names)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # aiosmtpd's auth_required would do the same, with a warning about TLS per connection.
        if self._server.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._server._refusal(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self._server.delay_seconds:
            await asyncio.sleep(self._server.delay_seconds)
        fault = self._server._next_data_fault()
        if fault == "disconnect":
            assert server.transport is not None
            server.transport.close()
            await asyncio.sleep(3600)  # connection_lost() cancels this handler
        if fault is not None:
            return fault
        self._server._record(envelope)
        return "250 Message accepted for delivery"


class _Connection(SMTP):
    def __init__(self, server: SmtpServer, **kwargs: Any) -> None:
        super().__init__(_Handler(server), **kwargs)
        self._owner = server

    def connection_lost(self, error: Exception | None) -> None:
        self._owner._open.discard(self)
        super().connection_lost(error)


class SmtpServer:
    """A sync context manager; see the module docstring."""

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
    ) -> None:
        self.host = HOST
        self.port = 0
        self.auth = auth
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.delay_seconds = 0.0
        self.messages: list[Received] = []
        self._connections = 0
        self._data_faults: list[str] = []
        self._refusals: dict[str, str] = {}
        self._lock = threading.Lock()
        self._open: set[_Connection] = set()  # touched by the server thread only
        self._tls = self_signed_tls_context() if starttls or implicit_tls else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._start_error: OSError | None = None

    @property
    def url(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = (
            f"{quote(self.auth[0], safe='')}:{quote(self.auth[1], safe='')}@" if self.auth else ""
        )
        query = "?starttls=true" if self.starttls else ""
        return f"{scheme}://{user}{self.host}:{self.port}{query}"

    @property
    def connections(self) -> int:
        """SMTP connections accepted so far."""
        with self._lock:
            return self._connections

    # Faults

    def fail_next(self, n: int, code: int, text: str = "Injected failure") -> None:
        """The next n DATA commands answer `code text`."""
        with self._lock:
            self._data_faults += [f"{code} {text}"] * n

    def disconnect_next(self, n: int = 1) -> None:
        """The next n DATA commands close the connection instead of answering."""
        with self._lock:
            self._data_faults += ["disconnect"] * n

    def refuse_recipient(self, address: str, code: int = 550, text: str = "No such user") -> None:
        """RCPT TO:<address> answers `code text` from now on."""
        with self._lock:
            self._refusals[address.lower()] = f"{code} {text}"

    def close_connections(self) -> None:
        """Close every open client connection from the server's side."""
        self._call(self._close_open)

    async def wait_for(
        self,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 (its own deadline, as in asyncio.wait_for)
    ) -> list[Received]:
        """The messages once at least `count` arrived; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
            await asyncio.sleep(0.01)
        return list(self.messages)

    # Lifecycle

    def __enter__(self) -> SmtpServer:
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="smtp-server", daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise TimeoutError("the SMTP server did not start")
        if self._start_error is not None:
            raise self._start_error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._loop is not None and self._thread is not None
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self, started: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                self._loop.create_server(
                    self._accept, self.host, 0, ssl=self._tls if self.implicit_tls else None
                )
            )
        except OSError as exc:
            self._start_error = exc
            started.set()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()
        self._loop.close()

    def _accept(self) -> _Connection:
        with self._lock:
            self._connections += 1
        assert self._loop is not None
        connection = _Connection(
            self,
            hostname="smtp.engage.test",  # else aiosmtpd asks socket.getfqdn() per connection
            loop=self._loop,
            enable_SMTPUTF8=True,
            tls_context=self._tls if self.starttls else None,
            auth_require_tls=False,  # loopback: AUTH in the clear is fine
            authenticator=self._authenticate if self.auth else None,
        )
        self._open.add(connection)
        return connection

    def _call(self, function: Any) -> None:
        """Run the coroutine function on the server's loop and wait for it."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(function(), self._loop).result(timeout=10)

    async def _close_open(self) -> None:
        for connection in list(self._open):
            if connection.transport is not None:
                connection.transport.close()
        await asyncio.sleep(0)  # let connection_lost() run

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._close_open()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # Called by the handler, on the server thread

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.auth is not None
        expected = LoginPassword(self.auth[0].encode(), self.auth[1].encode())
        return AuthResult(success=data == expected, handled=False)

    def _refusal(self, address: str) -> str | None:
        with self._lock:
            return self._refusals.get(address.lower())

    def _next_data_fault(self) -> str | None:
        with self._lock:
            return self._data_faults.pop(0) if self._data_faults else None

    def _record(self, envelope: Envelope) -> None:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            message=message,
            mail_options=list(envelope.mail_options),
        )
        with self._lock:
            self.messages.append(received)
