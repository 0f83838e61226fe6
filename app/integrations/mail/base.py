"""What every backend shares: the email to send, the delivery error, the protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol


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
