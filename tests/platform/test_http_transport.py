"""The GraphQL-over-HTTP rules of `/graphql`, in process: status codes, media types, limits.

The live audit in tests/e2e/test_http_conformance.py checks the same rules against a real
server; these run without a network, a database schema or Node.js.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from strawberry.extensions import SchemaExtension

from app.graphql_http import GRAPHQL_RESPONSE_JSON, GraphQLEndpoint
from app.main import create_app
from app.middleware import RequestContextMiddleware
from app.runtime import Runtime
from app.settings import Settings
from schema.schema import EngageSchema

GQL_JSON = GRAPHQL_RESPONSE_JSON
JSON = "application/json"
PRODUCTION_JWT_SECRET = "production-secret-0123456789abcdef-0123456789"

ClientFactory = Callable[..., Any]


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
        "ENGAGE_ENV": "test",
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def _client_for(app: Starlette, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://engage.test") as http:
            yield http
    finally:
        await runtime.close()  # ASGITransport runs no lifespan, so nothing else disposes it


@pytest.fixture
def app_client(tmp_path: Path) -> ClientFactory:
    """`app_client(**settings)`: an async context manager for a client of `create_app`."""

    def open_client(**overrides: Any) -> Any:
        app = create_app(_settings(tmp_path, **overrides))
        return _client_for(app, app.state.runtime)

    return open_client


@pytest.fixture
async def client(app_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as http:
        yield http


async def _post(
    client: httpx.AsyncClient, body: dict[str, Any], accept: str = JSON
) -> httpx.Response:
    return await client.post("/graphql", json=body, headers={"accept": accept})


def _media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


# Success and media types


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [(JSON, JSON), (GQL_JSON, GQL_JSON), ("*/*", JSON), (f"{GQL_JSON}, {JSON};q=0.9", GQL_JSON)],
)
async def test_query_answers_in_the_negotiated_media_type(
    client: httpx.AsyncClient, accept: str, media_type: str
) -> None:
    response = await _post(client, {"query": "{ __typename }"}, accept)
    assert response.status_code == 200
    assert _media_type(response) == media_type
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_get_runs_a_query_with_json_variables(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query Type($name: String!) { __type(name: $name) { name } }",
            "variables": '{"name": "Query"}',
        },
        headers={"accept": GQL_JSON},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__type": {"name": "Query"}}}


async def test_get_variables_nested_too_deep_are_400_not_500(client: httpx.AsyncClient) -> None:
    deep = '{"x": ' + "[" * 5000 + "]" * 5000 + "}"  # json.loads would hit the recursion limit
    response = await client.get(
        "/graphql",
        params={"query": "query Q($x: JSON) { __typename }", "variables": deep},
        headers={"accept": GQL_JSON},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.text


# Request errors: not executed, no `data`


@pytest.mark.parametrize("accept", [JSON, GQL_JSON])
async def test_unparsable_json_body_is_400(client: httpx.AsyncClient, accept: str) -> None:
    response = await client.post(
        "/graphql",
        content=b'{ "not a JSON',
        headers={"content-type": JSON, "accept": accept},
    )
    assert response.status_code == 400
    assert "data" not in response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"notquery": "{ __typename }"},
        {"query": ["array"]},
        {"query": "{ __typename }", "operationName": 0},
        {"query": "{ __typename }", "variables": "string"},
        {"query": "{ __typename }", "variables": '{"json": "text"}'},
        {"query": "{ __typename }", "extensions": False},
    ],
)
async def test_invalid_parameters_are_400(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await _post(client, body)
    assert response.status_code == 400
    assert "data" not in response.json()


async def test_empty_post_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", headers={"content-type": JSON})
    assert response.status_code == 400


DOCUMENT_ERRORS = [
    pytest.param({"query": "{"}, id="syntax"),
    pytest.param({"query": "{ noSuchField }"}, id="validation"),
    pytest.param(
        {"query": "query Q($id: ID!) { node(id: $id) { id } }", "variables": {"id": None}},
        id="variable-coercion",
    ),
    pytest.param({"query": "query A { __typename }", "operationName": "B"}, id="unknown-operation"),
    pytest.param({"query": "subscription { __typename }"}, id="subscription-over-http"),
]


@pytest.mark.parametrize("body", DOCUMENT_ERRORS)
async def test_document_errors_are_400_without_data_for_graphql_response_json(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await _post(client, body, GQL_JSON)
    assert response.status_code == 400
    assert _media_type(response) == GQL_JSON
    payload = response.json()
    assert "data" not in payload
    assert payload["errors"]


@pytest.mark.parametrize("body", DOCUMENT_ERRORS)
async def test_document_errors_are_200_without_data_for_application_json(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await _post(client, body, JSON)
    assert response.status_code == 200
    payload = response.json()
    assert "data" not in payload
    assert payload["errors"]


async def test_field_error_keeps_data_and_is_200(client: httpx.AsyncClient) -> None:
    body = {"query": 'query { jobPing(id: "bogus") { id } }'}  # anonymous: UNAUTHENTICATED
    response = await _post(client, body, GQL_JSON)
    assert response.status_code == 200
    payload = response.json()
    assert payload["data"] == {"jobPing": None}
    assert payload["errors"][0]["path"] == ["jobPing"]


# Methods


async def test_mutation_over_get_is_405_allowing_post(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql", params={"query": "mutation { __typename }"}, headers={"accept": GQL_JSON}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_mutation_over_post_runs(client: httpx.AsyncClient) -> None:
    response = await _post(client, {"query": "mutation { __typename }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Mutation"}}


async def test_other_methods_are_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


# Content types, size, Accept


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", f"{JSON}; charset=latin-1"],
)
async def test_unsupported_request_content_type_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
    )
    assert response.request.headers.get("content-type") == content_type
    assert response.status_code == 415


async def test_utf8_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content='{"query": "{ __type(name: \\"Run🏃Swim🏊\\") { name } }"}'.encode(),
        headers={"content-type": f"{JSON}; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__type": None}}


async def test_body_over_the_limit_is_413(app_client: ClientFactory) -> None:
    padding = " " * 3000
    async with app_client(MAX_BODY_BYTES=2048) as client:
        response = await _post(client, {"query": "{ __typename " + padding + "}"})
    assert response.status_code == 413


async def test_streamed_body_over_the_limit_is_413(app_client: ClientFactory) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit counts bytes read
        yield b'{"query": "{ __typename'
        for _ in range(10):
            yield b" " * 512
        yield b'}"}'

    async with app_client(MAX_BODY_BYTES=2048) as client:
        response = await client.post("/graphql", content=chunks(), headers={"content-type": JSON})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_unacceptable_accept_is_406(client: httpx.AsyncClient) -> None:
    response = await _post(client, {"query": "{ __typename }"}, "text/csv")
    assert response.status_code == 406


# GraphiQL


async def test_graphiql_for_a_browser_outside_production(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200
    assert _media_type(response) == "text/html"
    assert "graphiql" in response.text.lower()


async def test_no_graphiql_in_production(app_client: ClientFactory) -> None:
    async with app_client(ENGAGE_ENV="production", JWT_SECRET=PRODUCTION_JWT_SECRET) as client:
        response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 406
    assert _media_type(response) != "text/html"


# Request ids


@pytest.mark.parametrize(
    ("method", "accept"), [("GET", "text/csv"), ("POST", JSON), ("GET", "text/html")]
)
async def test_every_response_carries_a_request_id(
    client: httpx.AsyncClient, method: str, accept: str
) -> None:
    response = await client.request(
        method, "/graphql", json={"query": "{ __typename }"}, headers={"accept": accept}
    )
    assert len(response.headers["x-request-id"]) >= 16


async def test_a_well_formed_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "req-42.a_b"}
    )
    assert response.headers["x-request-id"] == "req-42.a_b"


async def test_a_malformed_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "bad id\t<x>"}
    )
    assert response.headers["x-request-id"] not in ("", "bad id\t<x>")


# Internal failures


class _BrokenExecution(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        raise RuntimeError("secret internals")
        yield  # pragma: no cover - makes this a generator hook


@strawberry.type
class _Query:
    ping: str = "pong"


@pytest.mark.parametrize("accept", [JSON, GQL_JSON])
async def test_failure_outside_resolvers_is_500_without_details(
    tmp_path: Path, accept: str
) -> None:
    runtime = Runtime.build(_settings(tmp_path))
    schema = EngageSchema(query=_Query, extensions=[_BrokenExecution])
    app = Starlette(
        routes=[Route("/graphql", GraphQLEndpoint(schema, runtime), methods=["GET", "POST"])],
        middleware=[Middleware(RequestContextMiddleware)],
    )
    async with _client_for(app, runtime) as client:
        response = await _post(client, {"query": "{ ping }"}, accept)
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert "data" not in response.json()
