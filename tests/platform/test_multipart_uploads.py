"""GraphQL multipart requests (file uploads) on `/graphql`.

No field of the real schema takes an `Upload` yet, so the uploads themselves go through a small
schema of this module served by the same `GraphQLEndpoint`; what does not reach a resolver
(the setting, the preflight header) is also checked on the real app.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.routing import Route
from strawberry.file_uploads import Upload

from app.graphql_http import GRAPHQL_RESPONSE_JSON, GraphQLEndpoint
from app.main import create_app
from app.middleware import RequestContextMiddleware
from app.runtime import Runtime
from app.settings import Settings
from schema.extensions import build_extensions
from schema.schema import EngageSchema

PREFLIGHT = {"graphql-require-preflight": "1"}
ECHO = "mutation Echo($file: Upload!) { echoUpload(file: $file) }"
ECHO_OPERATIONS = {"query": ECHO, "variables": {"file": None}}
ECHO_MAP = {"0": ["variables.file"]}

RESOLVED: list[UploadFile] = []  # every upload a resolver of the test schema received


async def _describe(file: Upload) -> str:
    assert isinstance(file, UploadFile)
    RESOLVED.append(file)
    content = (await file.read()).decode()
    return f"{file.filename}:{file.size}:{file.content_type}:{content}"


@strawberry.input
class UploadInput:
    title: str
    file: Upload


@strawberry.type
class UploadQuery:
    ping: str = "pong"


@strawberry.type
class UploadMutation:
    @strawberry.mutation
    async def echo_upload(self, file: Upload) -> str:
        return await _describe(file)

    @strawberry.mutation
    async def echo_uploads(self, files: list[Upload]) -> list[str]:
        return [await _describe(file) for file in files]

    @strawberry.mutation
    async def echo_input(self, input: UploadInput) -> str:
        return f"{input.title}={await _describe(input.file)}"


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
        await runtime.close()


def _upload_app(settings: Settings) -> tuple[Starlette, Runtime]:
    runtime = Runtime.build(settings)
    schema = EngageSchema(
        query=UploadQuery, mutation=UploadMutation, extensions=build_extensions(settings)
    )
    app = Starlette(
        routes=[Route("/graphql", GraphQLEndpoint(schema, runtime), methods=["GET", "POST"])],
        middleware=[Middleware(RequestContextMiddleware)],
    )
    return app, runtime


@pytest.fixture(autouse=True)
def _forget_uploads() -> Iterator[None]:
    RESOLVED.clear()
    yield
    RESOLVED.clear()


@pytest.fixture
def upload_client(tmp_path: Path) -> Any:
    """`upload_client(**settings)`: a client of the test schema's endpoint."""

    def open_client(**overrides: Any) -> Any:
        return _client_for(*_upload_app(_settings(tmp_path, **overrides)))

    return open_client


@pytest.fixture
async def client(upload_client: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with upload_client() as http:
        yield http


@pytest.fixture
def app_client(tmp_path: Path) -> Any:
    """`app_client(**settings)`: a client of the real application."""

    def open_client(**overrides: Any) -> Any:
        app = create_app(_settings(tmp_path, **overrides))
        return _client_for(app, app.state.runtime)

    return open_client


async def _post_multipart(
    client: httpx.AsyncClient,
    operations: Any = ECHO_OPERATIONS,
    files_map: Any = ECHO_MAP,
    files: dict[str, tuple[str, bytes, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    fields = {
        "operations": operations if isinstance(operations, str) else json.dumps(operations),
        "map": files_map if isinstance(files_map, str) else json.dumps(files_map),
    }
    return await client.post(
        "/graphql",
        data=fields,
        files=files if files is not None else {"0": ("a.txt", b"hello", "text/plain")},
        headers=PREFLIGHT if headers is None else headers,
    )


def _error_message(response: httpx.Response) -> str:
    payload = response.json()
    assert "data" not in payload
    return str(payload["errors"][0]["message"])


# Uploads that reach the resolver


async def test_an_upload_reaches_the_resolver(client: httpx.AsyncClient) -> None:
    response = await _post_multipart(client)
    assert response.status_code == 200
    assert response.json() == {"data": {"echoUpload": "a.txt:5:text/plain:hello"}}


async def test_uploads_in_a_list_and_an_input_object(client: httpx.AsyncClient) -> None:
    operations = {
        "query": "mutation($files: [Upload!]!, $input: UploadInput!) {"
        " echoUploads(files: $files) echoInput(input: $input) }",
        "variables": {"files": [None, None], "input": {"title": "csv", "file": None}},
    }
    files_map = {"0": ["variables.files.0", "variables.input.file"], "1": ["variables.files.1"]}
    files = {"0": ("a.csv", b"a,b", "text/csv"), "1": ("b.txt", b"bb", "text/plain")}
    response = await _post_multipart(client, operations, files_map, files)
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "echoUploads": ["a.csv:3:text/csv:a,b", "b.txt:2:text/plain:bb"],
            "echoInput": "csv=a.csv:3:text/csv:",  # the same file, already read
        }
    }


async def test_files_the_map_does_not_name_are_ignored(client: httpx.AsyncClient) -> None:
    files = {"0": ("a.txt", b"hello", "text/plain"), "extra": ("x.bin", b"\0\1", "a/b")}
    response = await _post_multipart(client, files=files)
    assert response.status_code == 200
    assert [upload.filename for upload in RESOLVED] == ["a.txt"]


async def test_apollo_require_preflight_is_accepted(client: httpx.AsyncClient) -> None:
    response = await _post_multipart(client, headers={"apollo-require-preflight": "true"})
    assert response.status_code == 200


async def test_uploaded_files_are_closed_after_the_request(client: httpx.AsyncClient) -> None:
    response = await _post_multipart(client)
    assert response.status_code == 200
    assert [upload.file.closed for upload in RESOLVED] == [True]


async def test_request_errors_keep_the_negotiated_media_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        data={"operations": json.dumps({"query": "{ nope }"}), "map": "{}"},
        files={"0": ("a.txt", b"x", "text/plain")},
        headers={**PREFLIGHT, "accept": GRAPHQL_RESPONSE_JSON},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
    assert "data" not in response.json()


# Size


async def test_a_declared_body_over_the_limit_is_413(upload_client: Any) -> None:
    async with upload_client(MAX_UPLOAD_BYTES=2048) as client:
        response = await _post_multipart(client, files={"0": ("big", b"x" * 4096, "a/b")})
    assert response.status_code == 413
    assert "2048 bytes" in _error_message(response)
    assert RESOLVED == []


def _multipart_chunks(boundary: str, file_size: int) -> Iterator[bytes]:
    def head(disposition: str) -> bytes:
        return f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode()

    yield head('name="operations"') + json.dumps(ECHO_OPERATIONS).encode() + b"\r\n"
    yield head('name="map"') + json.dumps(ECHO_MAP).encode() + b"\r\n"
    yield head('name="0"; filename="big"')
    for _ in range(file_size // 512):
        yield b"x" * 512
    yield f"\r\n--{boundary}--\r\n".encode()


async def test_a_streamed_body_over_the_limit_is_413(upload_client: Any) -> None:
    sent: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: the limit counts bytes read
        for chunk in _multipart_chunks("b0undary", 64 * 1024):
            sent.append(chunk)
            yield chunk

    async with upload_client(MAX_UPLOAD_BYTES=2048) as client:
        response = await client.post(
            "/graphql",
            content=body(),
            headers={**PREFLIGHT, "content-type": "multipart/form-data; boundary=b0undary"},
        )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert RESOLVED == []
    assert sum(map(len, sent)) < 4096  # refused as the limit was crossed, not after the end


async def test_a_streamed_body_under_the_limit_runs(upload_client: Any) -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in _multipart_chunks("b0undary", 1024):
            yield chunk

    async with upload_client(MAX_UPLOAD_BYTES=4096) as client:
        response = await client.post(
            "/graphql",
            content=body(),
            headers={**PREFLIGHT, "content-type": "multipart/form-data; boundary=b0undary"},
        )
    assert response.status_code == 200
    assert response.json()["data"]["echoUpload"].startswith("big:1024:")


# Refused requests: the resolver never runs


async def test_a_multipart_request_without_the_preflight_header_is_400(
    client: httpx.AsyncClient,
) -> None:
    response = await _post_multipart(client, headers={})
    assert response.status_code == 400
    assert "GraphQL-Require-Preflight" in _error_message(response)
    assert RESOLVED == []


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ('{"query": ', "'operations' field is not valid JSON"),
        ("42", "'operations' field must be a JSON object"),
        (json.dumps([ECHO_OPERATIONS]), "Batched operations are not supported"),
        (json.dumps({"query": ECHO, "variables": [None]}), "names no variable"),
    ],
)
async def test_bad_operations_are_400(
    client: httpx.AsyncClient, operations: str, message: str
) -> None:
    response = await _post_multipart(client, operations=operations)
    assert response.status_code == 400
    assert message in _error_message(response)
    assert RESOLVED == []


@pytest.mark.parametrize(
    ("files_map", "message"),
    [
        ('{"0": ', "'map' field is not valid JSON"),
        ('["variables.file"]', "'map' field must be a JSON object"),
        ('{"0": "variables.file"}', "'map' field must be a JSON object"),
        ('{"0": []}', "'map' field must be a JSON object"),
        ('{"0": [1]}', "'map' field must be a JSON object"),
        ('{"0": ["variables.nope"]}', "'variables.nope' names no variable"),
        ('{"0": ["variables.file.deeper"]}', "names no variable"),
        ('{"0": ["query"]}', "'query' names no variable"),
        ('{"1": ["variables.file"]}', "map names '1', which the request does not carry"),
        ('{"operations": ["variables.file"]}', "does not carry as a file"),
    ],
)
async def test_a_bad_map_is_400(client: httpx.AsyncClient, files_map: str, message: str) -> None:
    response = await _post_multipart(client, files_map=files_map)
    assert response.status_code == 400
    assert message in _error_message(response)
    assert RESOLVED == []


async def test_a_list_index_out_of_range_is_400(client: httpx.AsyncClient) -> None:
    operations = {
        "query": "mutation($f: [Upload!]!) { echoUploads(files: $f) }",
        "variables": {"f": [None]},
    }
    response = await _post_multipart(client, operations, {"0": ["variables.f.1"]})
    assert response.status_code == 400
    assert "'variables.f.1' names no variable" in _error_message(response)


@pytest.mark.parametrize("missing", ["operations", "map"])
async def test_a_missing_field_is_400(client: httpx.AsyncClient, missing: str) -> None:
    fields = {"operations": json.dumps(ECHO_OPERATIONS), "map": json.dumps(ECHO_MAP)}
    del fields[missing]
    response = await client.post(
        "/graphql", data=fields, files={"0": ("a.txt", b"x", "text/plain")}, headers=PREFLIGHT
    )
    assert response.status_code == 400
    assert f"no {missing!r} field" in _error_message(response)


async def test_operations_sent_as_a_file_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        data={"map": json.dumps(ECHO_MAP)},
        files={
            "operations": ("ops.json", json.dumps(ECHO_OPERATIONS).encode(), "application/json"),
            "0": ("a.txt", b"x", "text/plain"),
        },
        headers=PREFLIGHT,
    )
    assert response.status_code == 400
    assert "must be a form field, not a file" in _error_message(response)


async def test_a_multipart_body_without_a_boundary_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=b"--x\r\n",
        headers={**PREFLIGHT, "content-type": "multipart/form-data"},
    )
    assert response.status_code == 400
    assert "multipart body is malformed" in _error_message(response)


async def test_too_many_files_is_400(client: httpx.AsyncClient) -> None:
    files = {str(n): (f"{n}.txt", b"x", "text/plain") for n in range(21)}
    response = await _post_multipart(client, files=files)
    assert response.status_code == 400
    assert "Too many files" in _error_message(response)
    assert RESOLVED == []


# The real application


async def test_the_real_app_runs_a_multipart_request(app_client: Any) -> None:
    async with app_client() as client:
        response = await _post_multipart(
            client, operations={"query": "{ __typename }"}, files_map={}
        )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_the_real_app_requires_the_preflight_header(app_client: Any) -> None:
    async with app_client() as client:
        response = await _post_multipart(
            client, operations={"query": "{ __typename }"}, files_map={}, headers={}
        )
    assert response.status_code == 400
    assert "GraphQL-Require-Preflight" in _error_message(response)


async def test_uploads_disabled_by_the_setting_are_415(app_client: Any) -> None:
    async with app_client(MULTIPART_UPLOADS_ENABLED=False) as client:
        response = await _post_multipart(
            client, operations={"query": "{ __typename }"}, files_map={}
        )
    assert response.status_code == 415
    assert "Multipart uploads are disabled" in _error_message(response)


async def test_uploads_are_on_by_default() -> None:
    settings = Settings(_env_file=None)
    assert settings.multipart_uploads_enabled
    assert settings.max_upload_bytes == 5 * 1024 * 1024
