"""GraphQL over HTTP, done to the GraphQL-over-HTTP specification.

Strawberry's own views answer only `application/json`; this endpoint also speaks
`application/graphql-response+json` with the status codes the spec prescribes for it.
A malformed HTTP request (unparsable JSON, parameters of the wrong type, no query) is 400 for
either media type. GraphQL request errors (syntax, validation, variable coercion, an unknown
or unsupported operation) carry no `data` entry and are 400 with graphql-response+json, 200
with `application/json` as the spec asks for legacy clients; a response with data is 200. A
failure of ours before execution is 500. GET runs queries only; a mutation over GET is 405.

POST also takes `multipart/form-data` in the GraphQL multipart request format
(https://github.com/jaydenseric/graphql-multipart-request-spec): an `operations` field (the
JSON request), a `map` field (JSON: file field name -> paths such as `variables.input.file`)
and the files; resolvers get a starlette `UploadFile` wherever an `Upload` variable was mapped.
It is on with MULTIPART_UPLOADS_ENABLED (415 when off) and MAX_UPLOAD_BYTES caps the whole
body, counted as it streams in (413). A form POST is a "simple" request that any site can make
a browser send, so a multipart request must carry `GraphQL-Require-Preflight` (e.g. `1`) or
`Apollo-Require-Preflight` with a non-empty value: a custom header forces a CORS preflight.
Without it, or with malformed `operations` / `map`, a map path that names no variable, or
batched operations, the answer is 400. Files that the map does not name are ignored.

The request's unit of work ends here: committed when the operation raised nothing unexpected,
rolled back otherwise, and after-commit hooks (outbox relay, pub/sub) run only after a commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from graphql import GraphQLError, GraphQLFormattedError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from app import json_limits
from app.runtime import Runtime
from schema.context import Context

log = structlog.get_logger("engage.graphql")

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
_ACCEPTABLE = {
    GRAPHQL_RESPONSE_JSON: GRAPHQL_RESPONSE_JSON,
    APPLICATION_JSON: APPLICATION_JSON,
    "application/*": APPLICATION_JSON,
    "*/*": APPLICATION_JSON,
}
MULTIPART_FORM_DATA = "multipart/form-data"
PREFLIGHT_HEADERS = ("graphql-require-preflight", "apollo-require-preflight")
MAX_UPLOAD_FILES = 20  # file parts in one multipart request
MAX_FORM_FIELDS = 8  # non-file parts: `operations`, `map` and a few a client may add
_GET_ONLY = frozenset({OperationType.QUERY})
_POST = frozenset({OperationType.QUERY, OperationType.MUTATION})


class RequestError(Exception):
    """A request the server won't execute; answered with `status` and a GraphQL error body."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class GraphQLParams:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def negotiate(accept_header: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing we speak fits."""
    if not accept_header:
        return APPLICATION_JSON
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_header.split(",")):
        media_type, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        chosen = _ACCEPTABLE.get(media_type.lower())
        if chosen and quality > 0:
            ranked.append((-quality, position, chosen))
    return min(ranked)[2] if ranked else None


def _json_object(raw: Any, name: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RequestError(400, f"The {name!r} parameter must be a map.")
    return raw


def _decode_json_text(raw: str | None, name: str) -> Any:
    """A GET parameter that carries JSON text (`variables`, `extensions`); empty means absent."""
    if not raw:
        return None
    try:
        return json_limits.loads(raw)
    except ValueError as exc:
        raise RequestError(400, f"The {name!r} parameter is not valid JSON.") from exc


def _optional_string(raw: Any, name: str) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    raise RequestError(400, f"The {name!r} parameter must be a string.")


def params_from(data: Mapping[str, Any]) -> GraphQLParams:
    return GraphQLParams(
        query=_optional_string(data.get("query"), "query"),
        variables=_json_object(data.get("variables"), "variables"),
        operation_name=_optional_string(data.get("operationName"), "operationName") or None,
        extensions=_json_object(data.get("extensions"), "extensions"),
    )


def _get_params(query_params: Mapping[str, str]) -> GraphQLParams:
    return params_from(
        {
            "query": query_params.get("query"),
            "variables": _decode_json_text(query_params.get("variables"), "variables"),
            "operationName": query_params.get("operationName"),
            "extensions": _decode_json_text(query_params.get("extensions"), "extensions"),
        }
    )


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"The request body is over {limit} bytes.")


async def _read_body(request: Request, limit: int) -> bytes:
    _check_declared_length(request, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"The request body is over {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _content_type(request: Request) -> tuple[str, list[str]]:
    """The request's media type and its parameters, lower-cased; ("", []) when absent."""
    media_type, *params = (
        part.strip().lower() for part in request.headers.get("content-type", "").split(";")
    )
    return media_type, params


async def _post_params(request: Request, limit: int) -> GraphQLParams:
    media_type, params = _content_type(request)
    if not media_type:
        raise RequestError(415, "Send the request with Content-Type: application/json.")
    if media_type != APPLICATION_JSON:
        raise RequestError(415, f"Unsupported Content-Type {media_type!r}: use application/json.")
    for param in params:
        name, _, value = param.partition("=")
        if name == "charset" and value.strip('"') not in ("utf-8", "utf8"):
            raise RequestError(415, "Only the utf-8 charset is supported.")
    body = await _read_body(request, limit)
    if not body:
        raise RequestError(400, "The request body is empty.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise RequestError(400, "The request body must be a JSON object.")
    return params_from(data)


# Multipart requests (the GraphQL multipart request specification)


def _check_preflight(request: Request) -> None:
    """Refuse a cross-site form post: only a preflighted request can carry a custom header."""
    if not any(request.headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
        raise RequestError(
            400,
            "A multipart request must carry the header 'GraphQL-Require-Preflight: 1' (or "
            "'Apollo-Require-Preflight'), which makes browsers check CORS before sending it.",
        )


def _limited_receive(receive: Receive, limit: int) -> Receive:
    """`receive` that refuses the request (413) once more than `limit` body bytes came in."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise RequestError(413, f"The request body is over {limit} bytes.")
        return message

    return limited


async def _read_form(request: Request, limit: int, field_limit: int) -> FormData:
    """The parsed multipart body; files spool to temporary files and the caller closes them."""
    _check_declared_length(request, limit)
    limited = Request(request.scope, _limited_receive(request.receive, limit))
    try:
        return await limited.form(
            max_files=MAX_UPLOAD_FILES, max_fields=MAX_FORM_FIELDS, max_part_size=field_limit
        )
    except MultiPartException as exc:
        raise RequestError(400, f"The multipart body is malformed: {exc.message}") from exc
    except HTTPException as exc:  # starlette's form() wraps MultiPartException inside an app
        raise RequestError(400, f"The multipart body is malformed: {exc.detail}") from exc


def _form_json(form: FormData, name: str) -> Any:
    raw = form.get(name)
    if raw is None:
        raise RequestError(400, f"The multipart request has no {name!r} field.")
    if not isinstance(raw, str):
        raise RequestError(400, f"The {name!r} field must be a form field, not a file.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"The {name!r} field is not valid JSON.") from exc


def _read_operations(form: FormData) -> dict[str, Any]:
    operations = _form_json(form, "operations")
    if isinstance(operations, list):
        raise RequestError(400, "Batched operations are not supported.")
    if not isinstance(operations, dict):
        raise RequestError(400, "The 'operations' field must be a JSON object.")
    return operations


def _read_map(form: FormData) -> dict[str, list[str]]:
    files_map = _form_json(form, "map")
    if not isinstance(files_map, dict) or not all(
        isinstance(paths, list) and paths and all(isinstance(path, str) for path in paths)
        for paths in files_map.values()
    ):
        raise RequestError(
            400, "The 'map' field must be a JSON object of file field names to lists of paths."
        )
    return files_map


_MISSING = object()


def _step(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key, _MISSING)
    if isinstance(container, list) and key.isdigit() and int(key) < len(container):
        return container[int(key)]
    return _MISSING


def _names_a_variable(operations: dict[str, Any], path: str) -> bool:
    """Whether `path` (`variables.input.file`, `variables.files.0`) leads to a value."""
    keys = path.split(".")
    if len(keys) < 2 or keys[0] != "variables":
        return False
    target: Any = operations
    for key in keys:
        target = _step(target, key)
        if target is _MISSING:
            return False
    return True


def _mapped_files(
    form: FormData, files_map: dict[str, list[str]], operations: dict[str, Any]
) -> dict[str, UploadFile]:
    files: dict[str, UploadFile] = {}
    for name, paths in files_map.items():
        upload = form.get(name)
        if not isinstance(upload, UploadFile):
            raise RequestError(
                400, f"The map names {name!r}, which the request does not carry as a file."
            )
        for path in paths:
            if not _names_a_variable(operations, path):
                raise RequestError(400, f"The map path {path!r} names no variable.")
        files[name] = upload
    return files


def multipart_params(form: FormData) -> GraphQLParams:
    """The request parameters of a multipart request, its files in place of the variables
    the map names (strawberry's own replacement); unmapped files are ignored."""
    operations = _read_operations(form)
    files_map = _read_map(form)
    files = _mapped_files(form, files_map, operations)
    return params_from(replace_placeholders_with_files(operations, files_map, files))


def _is_request_error(result: ExecutionResult) -> bool:
    """Parse, validation and variable-coercion failures: nothing was executed."""
    if isinstance(result, PreExecutionError):
        return True
    return (
        result.data is None
        and bool(result.errors)
        and all(not error.path for error in result.errors or [])
    )


def _document_error(message: str) -> PreExecutionError:
    """A GraphQL request error found outside strawberry's parse/validate (operation selection):
    answered like one, 200 for application/json and 400 for graphql-response+json."""
    return PreExecutionError(data=None, errors=[GraphQLError(message)])


def _format_errors(errors: list[GraphQLError]) -> list[GraphQLFormattedError]:
    return [error.formatted for error in errors]


class GraphQLEndpoint:
    """The `/graphql` HTTP endpoint."""

    def __init__(self, schema: Any, runtime: Runtime) -> None:
        self.schema = schema
        self.runtime = runtime
        self._graphiql_html = get_graphql_ide_html("graphiql")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An ASGI app: Starlette's Route hands a class instance the raw ASGI triple.
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return self._error(405, "Use GET or POST.", APPLICATION_JSON, {"Allow": "GET, POST"})
        accept = request.headers.get("accept")
        if request.method == "GET" and self._wants_graphiql(request, accept):
            return HTMLResponse(self._graphiql_html)
        media_type = negotiate(accept)
        if media_type is None:
            return self._error(
                406, f"Accept {APPLICATION_JSON} or {GRAPHQL_RESPONSE_JSON}.", APPLICATION_JSON
            )
        try:
            if request.method == "GET":
                return await self._run(
                    request, _get_params(request.query_params), _GET_ONLY, media_type
                )
            if _content_type(request)[0] == MULTIPART_FORM_DATA:
                return await self._run_multipart(request, media_type)
            params = await _post_params(request, self.runtime.settings.max_body_bytes)
            return await self._run(request, params, _POST, media_type)
        except RequestError as exc:
            return self._error(exc.status, exc.message, media_type, exc.headers)

    async def _run(
        self,
        request: Request,
        params: GraphQLParams,
        allowed: frozenset[OperationType],
        media_type: str,
    ) -> Response:
        if not params.query:
            raise RequestError(400, "The request has no 'query'.")
        return await self._execute(request, params, allowed, media_type)

    async def _run_multipart(self, request: Request, media_type: str) -> Response:
        settings = self.runtime.settings
        if not settings.multipart_uploads_enabled:
            raise RequestError(
                415, "Multipart uploads are disabled on this server: use application/json."
            )
        _check_preflight(request)
        form = await _read_form(request, settings.max_upload_bytes, settings.max_body_bytes)
        try:
            return await self._run(request, multipart_params(form), _POST, media_type)
        finally:
            await form.close()

    def _wants_graphiql(self, request: Request, accept: str | None) -> bool:
        return (
            self.runtime.settings.graphiql_enabled
            and "query" not in request.query_params
            and "text/html" in (accept or "")
        )

    async def _execute(
        self,
        request: Request,
        params: GraphQLParams,
        allowed: frozenset[OperationType],
        media_type: str,
    ) -> Response:
        context = Context(
            request=request,
            runtime=self.runtime,
            request_id=request.state.request_id,
            operation_name=params.operation_name,
        )
        committed = False
        try:
            result = await self.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=params.extensions,
            )
            committed = not context.failed
        except InvalidOperationTypeError as exc:
            if request.method == "GET" and exc.operation_type is OperationType.MUTATION:
                raise RequestError(405, "Mutations need POST.", {"Allow": "POST"}) from exc
            result = _document_error("Subscriptions run over the WebSocket endpoint.")
        except CannotGetOperationTypeError as exc:
            result = _document_error(exc.as_http_error_reason())
        except MissingQueryError as exc:
            raise RequestError(400, "The request has no 'query'.") from exc
        finally:
            await context.finish(commit=committed)
        if isinstance(result, PreExecutionError) and context.failed:
            # Strawberry turns an exception outside the resolvers (an extension, the executor)
            # into a PreExecutionError; it is our fault, not a bad request, and its message is
            # not masked, so only the log gets the details.
            return self._error(500, "Internal server error.", media_type)
        return self._result_response(result, media_type)

    def _result_response(self, result: ExecutionResult, media_type: str) -> Response:
        request_error = _is_request_error(result)
        body: dict[str, Any] = {}
        if not request_error:
            body["data"] = result.data
        if result.errors:
            body["errors"] = _format_errors(result.errors)
        if result.extensions:
            body["extensions"] = result.extensions
        status = 400 if request_error and media_type == GRAPHQL_RESPONSE_JSON else 200
        return _json_response(body, status, media_type)

    def _error(
        self, status: int, message: str, media_type: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return _json_response({"errors": [{"message": message}]}, status, media_type, headers)


def _json_response(
    body: dict[str, Any], status: int, media_type: str, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=f"{media_type}; charset=utf-8",
        headers=dict(headers or {}),
    )
