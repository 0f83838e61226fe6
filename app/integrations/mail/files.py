"""The file backend: each message as an .eml file (the embedded default)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from email.policy import SMTP
from pathlib import Path

from app.integrations.mail.base import DeliveryError, MailSession, OutgoingEmail, send_each
from app.integrations.mail.message import _MESSAGE_ID, _malformed, build_message

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
