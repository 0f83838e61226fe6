"""The MIME message of an email: headers folded so non-ASCII text survives, checks
against header injection (see the package docstring)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
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
from email.policy import Policy
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import Any

from app.integrations.mail.base import DeliveryError, OutgoingEmail

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
