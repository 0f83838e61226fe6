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

from app.integrations.mail.base import (
    DeliveryError,
    MailBackend,
    MailSession,
    OutgoingEmail,
    send_each,
)
from app.integrations.mail.files import FileBackend
from app.integrations.mail.message import build_message
from app.integrations.mail.smtp import SmtpBackend
from app.settings import Settings


def mail_backend(settings: Settings) -> MailBackend:
    """SMTP when SMTP_URL is set, else .eml files under MAIL_FILE_DIR."""
    if settings.smtp_url:
        return SmtpBackend.from_url(
            settings.smtp_url,
            timeout=settings.smtp_timeout_seconds,
            validate_certs=settings.smtp_validate_certs,
        )
    return FileBackend(settings.mail_file_dir)


__all__ = [
    "DeliveryError",
    "FileBackend",
    "MailBackend",
    "MailSession",
    "OutgoingEmail",
    "SmtpBackend",
    "build_message",
    "mail_backend",
    "send_each",
]
