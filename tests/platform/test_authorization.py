"""The authorization matrix, generated from the schema (both backends).

Every root Query and Mutation field is called by an anonymous caller, a user, an admin and a
service, with arguments made up from the field's own types. `ACCESS`
(tests/platform/access.py) declares who may call each field, in one table: a field missing
from it fails `test_every_root_field_is_declared`, so a new field can't ship without a
decision. A caller who may not call a field gets
UNAUTHENTICATED (no credentials) or FORBIDDEN (the wrong role), no data, and no row changes;
a caller who may is never refused (a business rejection in the payload is fine).

This is the role level only. The object level, another USER calling these fields with the
victim's real ids, codes and secrets (`OWNED` in access.py), is
`test_object_authorization.py`; `node(id:)` for every Node type and caller is `test_nodes.py`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
    get_named_type,
    is_leaf_type,
)

from app.models.identity import Role
from app.runtime import Runtime
from schema.schema import build_schema
from tests.conftest import test_settings as make_settings
from tests.factories.identity import access_token, create_user, service_token
from tests.helpers import error_codes, gql, row_counts
from tests.platform.access import ACCESS, Access

CALLERS = ("anonymous", "user", "admin", "service")
REFUSED: dict[Access, dict[str, str]] = {
    Access.ANYONE: {},
    Access.SIGNED_IN: {"anonymous": "UNAUTHENTICATED"},
    Access.USER: {"anonymous": "UNAUTHENTICATED", "service": "FORBIDDEN"},
    Access.ADMIN: {"anonymous": "UNAUTHENTICATED", "user": "FORBIDDEN", "service": "FORBIDDEN"},
    Access.SERVICE: {"anonymous": "UNAUTHENTICATED", "user": "FORBIDDEN", "admin": "FORBIDDEN"},
    Access.ADMIN_OR_SERVICE: {"anonymous": "UNAUTHENTICATED", "user": "FORBIDDEN"},
}
AUTH_CODES = {"UNAUTHENTICATED", "FORBIDDEN"}
SCALAR_SAMPLES: dict[str, Any] = {
    "String": "x",
    "ID": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "DateTime": "2026-01-01T00:00:00+00:00",
    "JSON": {},
    "Upload": "x",
}


def _schema() -> GraphQLSchema:
    return build_schema(make_settings())._schema


def _root_fields(schema: GraphQLSchema) -> dict[str, GraphQLField]:
    roots = (schema.query_type, schema.mutation_type)
    return {
        f"{root.name}.{name}": field
        for root in roots
        if root
        for name, field in root.fields.items()
    }


def _sample(type_: GraphQLInputType) -> Any:
    """A value of `type_` with every required field filled in (nothing optional)."""
    if isinstance(type_, GraphQLNonNull):
        return _sample(type_.of_type)
    if isinstance(type_, GraphQLList):
        return []
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLScalarType):
        return SCALAR_SAMPLES[type_.name]
    assert isinstance(type_, GraphQLInputObjectType)
    return {
        name: _sample(field.type)
        for name, field in type_.fields.items()
        if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
    }


def _operation(name: str, field: GraphQLField) -> tuple[str, dict[str, Any]]:
    """A document calling the root field `name` with sample arguments, and its variables."""
    root, field_name = name.split(".")
    required = {
        arg_name: arg
        for arg_name, arg in field.args.items()
        if isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
    }
    declarations = ", ".join(f"${a}: {arg.type}" for a, arg in required.items())
    arguments = ", ".join(f"{a}: ${a}" for a in required)
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    keyword = "query" if root == "Query" else "mutation"
    header = f"{keyword} Call({declarations})" if declarations else keyword
    call = f"{field_name}({arguments})" if arguments else field_name
    variables = {a: _sample(arg.type) for a, arg in required.items()}
    return f"{header} {{ {call}{selection} }}", variables


def test_every_root_field_is_declared() -> None:
    assert set(_root_fields(_schema())) == set(ACCESS)


async def _tokens(runtime: Runtime) -> dict[str, str | None]:
    user = await create_user(runtime)
    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    return {
        "anonymous": None,
        "user": await access_token(runtime, user),
        "admin": await access_token(runtime, admin),
        "service": await service_token(runtime),
    }


@pytest.mark.parametrize("name", sorted(ACCESS))
async def test_only_the_declared_callers_get_through(
    name: str, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    field = _root_fields(_schema())[name]
    document, variables = _operation(name, field)
    refused = REFUSED[ACCESS[name]]
    tokens = await _tokens(runtime)
    before = await row_counts(runtime)
    for caller in (c for c in CALLERS if c in refused):
        body = await gql(client, document, variables, token=tokens[caller])
        assert error_codes(body) == [refused[caller]], (name, caller, body)
        assert not any((body.get("data") or {}).values()), (name, caller, body)
    assert await row_counts(runtime) == before, name
    for caller in (c for c in CALLERS if c not in refused):
        body = await gql(client, document, variables, token=tokens[caller])
        assert AUTH_CODES.isdisjoint(error_codes(body)), (name, caller, body)
