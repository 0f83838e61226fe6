"""schema.graphql is the exported contract: it must match what the code builds."""

from __future__ import annotations

from app.cli import SCHEMA_FILE, schema_sdl


def test_schema_graphql_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_sdl(), (
        "schema.graphql is stale: run `engage export-schema` (or `make schema`) and commit it"
    )


def test_schema_names_follow_the_conventions() -> None:
    sdl = schema_sdl()
    for mutation in ("register(", "login(", "tokenRefresh(", "logout(", "accountDelete("):
        assert f"  {mutation}input:" in sdl
    assert (
        "type AccountError {\n  code: AccountErrorCode!\n  field: String\n  message: String!" in sdl
    )
