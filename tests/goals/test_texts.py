"""Localizable goal texts: validation naming the field, and the read-path locale fallback."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.errors import DomainError
from app.services.goals.codes import GoalErrorCode
from app.services.goals.texts import (
    MAX_LOCALES,
    localize,
    localize_lines,
    validate_lines,
    validate_text,
)

Code = GoalErrorCode


def text(value: object, **options: Any) -> dict[str, str]:
    return validate_text(value, "title", default_locale="en", max_length=20, **options)


def lines(value: object, **options: Any) -> dict[str, list[str]]:
    return validate_lines(value, "details", default_locale="en", max_length=20, **options)


def refusal(call: Any, value: object, **options: Any) -> tuple[object, str | None]:
    with pytest.raises(DomainError) as refused:
        call(value, **options)
    return refused.value.code, refused.value.field


def test_texts_are_normalised() -> None:
    given_texts = {"en": "  Ride 5 times ", "ru_ru": "Совершите 5 поездок", "PT-br": "Faça"}
    assert text(given_texts) == {
        "en": "Ride 5 times",
        "ru-RU": "Совершите 5 поездок",
        "pt-BR": "Faça",
    }
    assert text(None, required=False) == {} and text({}, required=False) == {}
    assert text({"en": "two\nlines"}, multiline=True) == {"en": "two\nlines"}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("Ride", "title"),  # not a map
        (["en"], "title"),
        ({}, "title.en"),  # required: the default is missing
        ({"ru": "Поездки"}, "title.en"),
        ({"en": "ok", "english": "x"}, "title.english"),  # not a locale
        ({"en": "ok", "e1": "x"}, "title.e1"),
        ({"en": "ok", "EN": "x"}, "title.EN"),  # the same locale twice
        ({"en": ""}, "title.en"),
        ({"en": "   "}, "title.en"),
        ({"en": "x" * 21}, "title.en"),
        ({"en": 5}, "title.en"),
        ({"en": "bad\x00text"}, "title.en"),
        ({"en": "two\nlines"}, "title.en"),  # one line unless multiline
        ({f"l{chr(97 + i // 26)}{chr(97 + i % 26)}": "x" for i in range(21)}, "title"),
    ],
)
def test_bad_texts_name_the_field(value: object, field: str) -> None:
    assert refusal(text, value) == (Code.INVALID_TEXT, field)


def test_an_optional_map_still_needs_the_default_when_not_empty() -> None:
    assert refusal(text, {"ru": "Текст"}, required=False) == (Code.INVALID_TEXT, "title.en")
    assert MAX_LOCALES == 20


def test_lines() -> None:
    assert lines({"en": [" a ", "b"], "ru": ["в"]}) == {"en": ["a", "b"], "ru": ["в"]}
    assert lines(None) == {} and lines({}) == {}
    assert lines({"en": ["x"] * 10}) == {"en": ["x"] * 10}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"en": "one line"}, "details.en"),
        ({"en": []}, "details.en"),
        ({"en": ["x"] * 11}, "details.en"),
        ({"en": ["ok", ""]}, "details.en.1"),
        ({"en": ["ok", "x" * 21]}, "details.en.1"),
        ({"en": ["ok"], "ru": [None]}, "details.ru.0"),
        ({"ru": ["в"]}, "details.en"),
    ],
)
def test_bad_lines_name_the_field(value: object, field: str) -> None:
    assert refusal(lines, value) == (Code.INVALID_TEXT, field)


TEXTS = {"en": "Ride", "ru": "Поездки", "pt": "Corridas", "pt-PT": "Viagens"}


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("ru", "Поездки"),  # exact
        ("pt-PT", "Viagens"),
        ("pt-BR", "Corridas"),  # the language
        ("ru-RU", "Поездки"),
        ("de", "Ride"),  # the default
        ("de-AT", "Ride"),
        (None, "Ride"),
        ("", "Ride"),
    ],
)
def test_localize_falls_back_to_the_language_then_the_default(
    locale: str | None, expected: str
) -> None:
    assert localize(TEXTS, locale, "en") == expected


def test_localize_without_the_default() -> None:
    assert localize({}, "ru", "en") == ""
    assert localize_lines({}, "ru", "en") == []
    details = {"en": ["a", "b"], "ru": ["раз"]}
    assert localize_lines(details, "ru-RU", "en") == ["раз"]
    assert localize_lines(details, "fr", "en") == ["a", "b"]
    assert localize_lines(details, "fr", "en") is not details["en"]  # a copy


@given(st.dictionaries(st.sampled_from(["en", "ru", "pt-BR", "de"]), st.text(min_size=1)))
def test_localize_returns_a_text_of_the_map_or_the_default(texts: dict[str, str]) -> None:
    texts = {"en": "default", **texts}
    for locale in ("en", "ru", "pt-BR", "pt", "fr", None):
        assert localize(texts, locale, "en") in texts.values()
