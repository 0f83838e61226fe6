"""Enum outputs serialize by a dict lookup (schema.schema._index_enum_outputs): every member
of every enum in the schema renders exactly as strawberry's own scan renders it, and what is
not a member fails as it did."""

from __future__ import annotations

import enum

import pytest
from graphql import GraphQLError
from strawberry.schema.schema_converter import CustomGraphQLEnumType

from app.settings import Settings
from schema.schema import build_schema


def _enum_types() -> list[CustomGraphQLEnumType]:
    graphql_schema = build_schema(Settings())._schema
    return [t for t in graphql_schema.type_map.values() if isinstance(t, CustomGraphQLEnumType)]


def test_every_member_of_every_enum_serializes_as_strawberry_would() -> None:
    types = _enum_types()
    assert len(types) >= 10
    for graphql_type in types:
        for member in graphql_type.wrapped_cls:
            expected = CustomGraphQLEnumType.coerce_output_value(graphql_type, member)
            assert graphql_type.serialize(member) == expected, (graphql_type.name, member)
            assert graphql_type.coerce_output_value(member) == expected


def test_a_value_that_is_no_member_fails_as_before() -> None:
    class Stranger(enum.Enum):
        NOPE = "NOPE"

    graphql_type = _enum_types()[0]
    for value in (Stranger.NOPE, "not a member"):
        with pytest.raises((GraphQLError, ValueError)):
            CustomGraphQLEnumType.coerce_output_value(graphql_type, value)
        with pytest.raises((GraphQLError, ValueError)):
            graphql_type.serialize(value)
