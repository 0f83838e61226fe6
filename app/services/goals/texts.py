"""Localizable texts of goal templates: a JSON map locale -> text, with a default locale.

    {"en": "Ride 5 times", "ru": "Совершите 5 поездок", "pt-BR": "Faça 5 corridas"}

A template names its `default_locale`, and every non-empty map holds a text for it, so a
reader always finds something to show. Locales are normalised like users' locales
(`pt_br` -> `pt-BR`, see `app.services.validation.normalize_locale`); texts are stripped.
`details` maps a locale to a list of lines instead of one text.

Writing (`validate_text`, `validate_lines`) raises DomainError(INVALID_TEXT) naming the field,
e.g. `title.ru` or `details.en.2`. Reading (`localize`, `localize_lines`) picks the exact
locale, then its language (`pt-BR` -> `pt`), then the default; it runs per field on the read
path, so it is plain dict lookups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from app.services.errors import DomainError
from app.services.goals.codes import GoalErrorCode
from app.services.validation import InvalidValue, normalize_locale

__all__ = [
    "MAX_LINES",
    "MAX_LOCALES",
    "LocalizedLines",
    "LocalizedText",
    "check_locale",
    "localize",
    "localize_lines",
    "validate_lines",
    "validate_text",
]

MAX_LOCALES = 20
MAX_LINES = 10

LocalizedText = dict[str, str]
LocalizedLines = dict[str, list[str]]

_CODE = GoalErrorCode.INVALID_TEXT
T = TypeVar("T")


def check_locale(value: object, field: str) -> str:
    """A normalised locale (`en`, `ru-RU`, `pt-BR`), or INVALID_TEXT naming `field`."""
    if not isinstance(value, str):
        raise DomainError(_CODE, "Give a locale such as en or pt-BR.", field)
    try:
        return normalize_locale(value)
    except InvalidValue as exc:
        raise DomainError(
            _CODE, f"Not a locale: {value!r}; use one such as en or pt-BR.", field
        ) from exc


def _check_line(value: object, field: str, max_length: int, *, multiline: bool) -> str:
    if not isinstance(value, str):
        raise DomainError(_CODE, "Give a string.", field)
    text = value.strip()
    printable = (text.replace("\n", " ") if multiline else text).isprintable()
    if not text or len(text) > max_length or not printable:
        where = "" if multiline else " on one line"
        raise DomainError(_CODE, f"Give 1-{max_length} printable characters{where}.", field)
    return text


def _entries(
    value: object, field: str, default_locale: str, *, required: bool
) -> list[tuple[str, str, Any]]:
    """(locale, field of the entry, raw value) per key; checks the map's shape and default."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise DomainError(_CODE, "Give an object mapping locales to texts.", field)
    if len(value) > MAX_LOCALES:
        raise DomainError(_CODE, f"Give at most {MAX_LOCALES} locales.", field)
    entries: list[tuple[str, str, Any]] = []
    seen: set[str] = set()
    for key, raw in value.items():
        entry_field = f"{field}.{key}"
        locale = check_locale(key, entry_field)
        if locale in seen:
            raise DomainError(_CODE, f"The locale {locale} is given twice.", entry_field)
        seen.add(locale)
        entries.append((locale, entry_field, raw))
    if (required or entries) and default_locale not in seen:
        raise DomainError(
            _CODE,
            f"Give a text for the default locale {default_locale}.",
            f"{field}.{default_locale}",
        )
    return entries


def validate_text(
    value: object,
    field: str,
    *,
    default_locale: str,
    max_length: int,
    required: bool = True,
    multiline: bool = False,
) -> LocalizedText:
    """A normalised locale -> text map, or DomainError(INVALID_TEXT) naming the field.

    `required`: the map must hold a text for `default_locale`; otherwise it may be empty (or
    null), but a non-empty map still needs the default. At most 20 locales; each text 1 to
    `max_length` printable characters after stripping (line breaks only if `multiline`).
    """
    return {
        locale: _check_line(raw, entry_field, max_length, multiline=multiline)
        for locale, entry_field, raw in _entries(value, field, default_locale, required=required)
    }


def validate_lines(
    value: object,
    field: str,
    *,
    default_locale: str,
    max_length: int,
    max_lines: int = MAX_LINES,
    required: bool = False,
) -> LocalizedLines:
    """A normalised locale -> lines map (`details`); errors name `field.<locale>.<index>`.

    Each locale has 1 to `max_lines` lines of 1 to `max_length` printable characters.
    """
    result: LocalizedLines = {}
    for locale, entry_field, raw in _entries(value, field, default_locale, required=required):
        if not isinstance(raw, list | tuple) or not 1 <= len(raw) <= max_lines:
            raise DomainError(_CODE, f"Give a list of 1-{max_lines} lines.", entry_field)
        result[locale] = [
            _check_line(line, f"{entry_field}.{index}", max_length, multiline=False)
            for index, line in enumerate(raw)
        ]
    return result


def _pick(texts: Mapping[str, T], locale: str | None, default_locale: str) -> T | None:
    if locale:
        found = texts.get(locale)
        if found is not None:
            return found
        dash = locale.find("-")
        if dash > 0:
            found = texts.get(locale[:dash])
            if found is not None:
                return found
    return texts.get(default_locale)


def localize(texts: Mapping[str, str], locale: str | None, default_locale: str) -> str:
    """The text for `locale`: exact, then its language (`pt-BR` -> `pt`), then the default.

    `locale` is a normalised locale (as users' locales are stored); "" when the map is empty.
    """
    found = _pick(texts, locale, default_locale)
    return "" if found is None else found


def localize_lines(
    lines: Mapping[str, Sequence[str]], locale: str | None, default_locale: str
) -> list[str]:
    """`localize` for `details`: the lines for `locale`, its language or the default; or []."""
    found = _pick(lines, locale, default_locale)
    return [] if found is None else list(found)
