"""`app.json_limits.loads`: client JSON text past the nesting bound is a ValueError, never a
RecursionError (which `json.loads` raises and the transports would not catch)."""

from __future__ import annotations

import json

import pytest

from app.json_limits import MAX_DECODE_DEPTH, loads


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_bound_decodes() -> None:
    assert loads(deep(3)) == [[[]]]
    assert loads(deep(MAX_DECODE_DEPTH).encode()) is not None


@pytest.mark.parametrize("depth", [MAX_DECODE_DEPTH + 1, 100_000])
def test_deeper_nesting_is_a_json_decode_error(depth: int) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(deep(depth))


def test_the_standard_decoder_would_recurse() -> None:
    """Why the module exists: json.loads fails past the bound with RecursionError."""
    with pytest.raises(RecursionError):
        json.loads(deep(100_000))


def test_text_that_is_not_json_is_a_value_error() -> None:
    assert issubclass(json.JSONDecodeError, ValueError)  # what the transports catch
    for text in ("{", "NaN", "[1,]", ""):
        with pytest.raises(json.JSONDecodeError):
            loads(text)
