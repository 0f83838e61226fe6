"""Schema-driven fuzzing with hypothesis-graphql, on both backends.

For every root Query and Mutation field, hypothesis-graphql writes valid operations (every
argument shape the schema allows, odd strings and nulls included) and operations with one
schema violation. Each is sent by a caller allowed to call the field (`ACCESS` in
tests/platform/access.py), with error masking on, and the answer must be an ordinary GraphQL
answer: HTTP 200, no masked bug ("Unexpected error."), no traceback or SQL in the body; a
mutation that was refused (GraphQL errors or payload errors) changes no row.

`make test` runs a small, derandomized budget (ENGAGE_FUZZ_EXAMPLES, default 3 valid and 2
invalid operations per field); `make fuzz` runs a longer, random one.
"""

from __future__ import annotations

import os
import re
from datetime import UTC
from typing import Any

import httpx
import pytest
from graphql import ObjectValueNode, StringValueNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis_graphql import Mode, from_schema

from app.models.identity import Role
from app.runtime import Runtime
from schema.schema import build_schema
from tests.conftest import make_client
from tests.conftest import test_settings as make_settings
from tests.factories.identity import access_token, create_user, service_token
from tests.helpers import row_counts
from tests.platform.access import ACCESS, Access

EXAMPLES = int(os.environ.get("ENGAGE_FUZZ_EXAMPLES", "3"))
RANDOM = os.environ.get("ENGAGE_FUZZ_RANDOM") == "1"
LEAKS = re.compile(r"Traceback|sqlalchemy|asyncpg|sqlite3|\bSELECT\b|\bINSERT\b|\bUPDATE\b .* SET")
SDL = build_schema(make_settings()).as_str()
CUSTOM_SCALARS = {
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(
        lambda moment: StringValueNode(value=moment.isoformat())
    ),
    "JSON": st.one_of(
        st.just(ObjectValueNode(fields=())),
        st.text(max_size=20).map(lambda text: StringValueNode(value=text)),
    ),
    "Upload": st.text(max_size=5).map(lambda text: StringValueNode(value=text)),
}
CALLER_FOR = {
    Access.ANYONE: "user",
    Access.SIGNED_IN: "user",
    Access.USER: "user",
    Access.ADMIN: "admin",
    Access.SERVICE: "service",
    Access.ADMIN_OR_SERVICE: "service",  # scoring's import
}


def _documents(field: str, mode: Mode, count: int) -> list[str]:
    """`count` operations for one root field, drawn by hypothesis (no shrinking: collecting)."""
    found: list[str] = []
    strategy = from_schema(
        SDL, fields=[field], custom_scalars=CUSTOM_SCALARS, mode=mode, allow_x00=False
    )

    @settings(
        max_examples=count,
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(document: Any) -> None:
        found.append(str(document))

    try:
        collect()
    except InvalidArgument:  # NEGATIVE needs an argument to violate; some fields take none
        assert mode is Mode.NEGATIVE
    return found


def _problems(response: httpx.Response) -> list[str]:
    problems = []
    if response.status_code != 200:
        problems.append(f"HTTP {response.status_code}")
    if "Unexpected error" in response.text:
        problems.append("a masked bug")
    if LEAKS.search(response.text):
        problems.append("internals in the body")
    return problems


def _refused(body: dict[str, Any], field: str) -> bool:
    if body.get("errors"):
        return True
    payload = (body.get("data") or {}).get(field)
    return isinstance(payload, dict) and bool(payload.get("errors"))


@pytest.mark.parametrize("name", sorted(ACCESS))
async def test_fuzzed_operations_get_ordinary_answers(name: str, runtime: Runtime) -> None:
    root, field = name.split(".")
    user = await create_user(runtime)
    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    tokens = {
        "user": await access_token(runtime, user),
        "admin": await access_token(runtime, admin),
        "service": await service_token(runtime),
    }
    token = tokens[CALLER_FOR[ACCESS[name]]]
    documents = _documents(field, Mode.POSITIVE, EXAMPLES) + _documents(
        field, Mode.NEGATIVE, max(1, EXAMPLES - 1)
    )
    async with make_client(runtime, mask_errors=True) as client:
        for document in documents:
            before = await row_counts(runtime) if root == "Mutation" else None
            response = await client.post(
                "/graphql",
                json={"query": document},
                headers={"accept": "application/json", "authorization": f"Bearer {token}"},
            )
            assert _problems(response) == [], (name, document, response.text[:500])
            if before is not None and _refused(response.json(), field):
                assert await row_counts(runtime) == before, (name, document)
