"""Pure promocode generation: distinct, well-formed, avoiding taken codes, refusing dense spaces."""

from __future__ import annotations

import secrets
from random import Random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.promocodes.generator import (
    MAX_CODE_LENGTH,
    SAFE_CHARSET,
    capacity,
    generate,
    normalize_code,
)


def test_safe_charset_has_no_look_alikes() -> None:
    assert not set("0O1IL") & set(SAFE_CHARSET)
    assert len(set(SAFE_CHARSET)) == len(SAFE_CHARSET) == 31


@pytest.mark.parametrize(
    ("text", "expected"),
    [("  spring-2030 \n", "SPRING-2030"), ("AbC", "ABC"), ("", ""), ("X", "X")],
)
def test_normalize_code(text: str, expected: str) -> None:
    assert normalize_code(text) == expected


def test_capacity() -> None:
    assert capacity(1, "AB") == 2
    assert capacity(4, "AB") == 16
    assert capacity(8, SAFE_CHARSET) == 31**8


@pytest.mark.parametrize(
    ("length", "charset", "message"),
    [
        (0, "AB", "at least 1 symbol"),
        (4, "A", "at least 2 symbols"),
        (4, "ABA", "repeats"),
        (4, "abc", "A-Z and 0-9"),
        (4, "AB-", "A-Z and 0-9"),
    ],
)
def test_capacity_rejects_bad_shapes(length: int, charset: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        capacity(length, charset)


def test_codes_are_distinct_and_from_the_charset() -> None:
    codes = generate(5000, length=4, charset="ABCDEFGHJK", rng=Random(1))  # half of 10,000
    assert len(codes) == len(set(codes)) == 5000
    assert all(len(code) == 4 and set(code) <= set("ABCDEFGHJK") for code in codes)


def test_default_charset_and_system_random() -> None:
    codes = generate(200, length=10)
    assert len(set(codes)) == 200
    assert all(len(code) == 10 and set(code) <= set(SAFE_CHARSET) for code in codes)


def test_the_default_generator_is_the_csprng() -> None:
    from app.services.promocodes import generator

    assert isinstance(generator._SYSTEM_RANDOM, secrets.SystemRandom)


def test_prefix_is_normalised_and_prepended() -> None:
    codes = generate(50, length=6, prefix=" spring-30 ", rng=Random(2))
    assert all(code.startswith("SPRING-30") and len(code) == 15 for code in codes)


@pytest.mark.parametrize("prefix", ["SPRING 30", "SPRING_30", "ÄPFEL", "A.B", "A/B", "x*"])
def test_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix may only hold"):
        generate(1, length=8, prefix=prefix)


def test_total_length_is_at_most_64() -> None:
    assert len(generate(1, length=MAX_CODE_LENGTH - 4, prefix="ABCD")[0]) == MAX_CODE_LENGTH
    with pytest.raises(ValueError, match="exceeds 64"):
        generate(1, length=MAX_CODE_LENGTH - 3, prefix="ABCD")


def test_refuses_more_than_half_of_the_space() -> None:
    assert len(generate(8, length=4, charset="AB", rng=Random(3))) == 8  # exactly half of 16
    with pytest.raises(ValueError, match="more than half of the 16 possible codes"):
        generate(9, length=4, charset="AB")
    with pytest.raises(ValueError, match="more than half"):
        generate(31**2 // 2 + 1, length=2)


def test_zero_codes_and_negative_count() -> None:
    assert generate(0, length=4) == []
    with pytest.raises(ValueError, match="negative"):
        generate(-1, length=4)


def test_taken_codes_are_avoided_when_draws_collide() -> None:
    """The same seed draws the same codes first: every one of those draws must be skipped."""
    shape: dict[str, Any] = {"length": 4, "prefix": "T-", "charset": "AB"}
    first = generate(4, **shape, rng=Random(42))
    again = generate(4, **shape, taken=set(first), rng=Random(42))
    assert len(set(again)) == 4
    assert not set(again) & set(first)


def test_refuses_when_taken_codes_leave_too_few_free() -> None:
    shape: dict[str, Any] = {"length": 4, "prefix": "", "charset": "AB"}
    taken = set(generate(8, **shape, rng=Random(5)))
    taken |= set(generate(4, **shape, taken=taken, rng=Random(6)))  # 12 of 16 taken
    assert len(set(generate(4, **shape, taken=taken, rng=Random(7))) - taken) == 4
    with pytest.raises(ValueError, match="only 4 of the 16 possible codes are free"):
        generate(5, **shape, taken=taken)


def test_taken_codes_of_another_shape_do_not_count_against_the_space() -> None:
    other = {"ZZZZ", "T-AAAAA", "T-AAA", "X-AAAA", "T-AAAZ"}
    codes = generate(8, length=4, prefix="T-", charset="AB", taken=other, rng=Random(8))
    assert len(set(codes)) == 8


def test_seeded_generation_is_reproducible() -> None:
    assert generate(20, length=8, rng=Random(9)) == generate(20, length=8, rng=Random(9))


@given(
    count=st.integers(min_value=0, max_value=200),
    length=st.integers(min_value=4, max_value=12),
    prefix=st.from_regex(r"[A-Za-z0-9-]{0,10}", fullmatch=True),
    seed=st.integers(),
)
def test_generated_codes_are_well_formed(count: int, length: int, prefix: str, seed: int) -> None:
    codes = generate(count, length=length, prefix=prefix, rng=Random(seed))
    assert len(set(codes)) == count
    for code in codes:
        assert code == normalize_code(code)
        assert code.startswith(prefix.upper())
        assert set(code[len(prefix) :]) <= set(SAFE_CHARSET)
        assert len(code) == len(prefix) + length


@given(seed=st.integers(), taken_share=st.integers(min_value=0, max_value=8))
def test_tiny_space_never_returns_a_taken_code(seed: int, taken_share: int) -> None:
    rng = Random(seed)
    taken = set(generate(taken_share, length=4, charset="AB", rng=rng))
    free = 16 - len(taken)
    codes = generate(min(8, free), length=4, charset="AB", taken=taken, rng=rng)
    assert len(set(codes)) == min(8, free)
    assert not set(codes) & taken
