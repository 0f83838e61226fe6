"""Which typed codes are looked up at all (docs/testing.md, `make mutate`): a code the table
can't hold (empty, over 64 characters, control or non-ASCII characters) is refused unread."""

from __future__ import annotations

import pytest

from app.services.promocodes.eligibility import is_well_formed
from app.services.promocodes.generator import MAX_CODE_LENGTH


@pytest.mark.parametrize(
    ("code", "well_formed"),
    [
        ("", False),
        ("A", True),
        ("A" * MAX_CODE_LENGTH, True),
        ("A" * (MAX_CODE_LENGTH + 1), False),
        ("HALF PRICE", True),
        ("HALF\tPRICE", False),
        ("HALF\nPRICE", False),
        ("SKIDKA-СКИДКА", False),
    ],
)
def test_well_formed_codes(code: str, well_formed: bool) -> None:
    assert is_well_formed(code) is well_formed
