"""GraphQL subscriptions over WebSocket, on `/graphql`, with the `graphql-transport-ws` protocol.

Strawberry's ASGI view speaks the protocol; this module plugs engage in:

- Authentication happens once, at `connection_init`: its payload's `authorization`
  (`"Bearer <access token>"`, or a service token) is checked like an HTTP request's header
  (the handshake's `Authorization` header is used when the payload has none). A refused
  credential closes the connection with 4403 Forbidden; no credential connects anonymously,
  and subscriptions that need a user then fail with `UNAUTHENTICATED`.
- The principal is resolved in a short unit of work, and the connection holds no database
  session afterwards: subscriptions stream from pub/sub and may live for hours.
- Only subscriptions run here. Queries and mutations go over HTTP, where each request has its
  own unit of work; over the WebSocket they get an `error` message.

The principal is the one of the connection's start: a token that expires or a user blocked
later keeps the connection until it closes. Browsers can't attach credentials to the
handshake on their own (the token travels in `connection_init`), so connections from any
origin are accepted. Keep-alive is the WebSocket's own: the server pings every 20 seconds
(uvicorn's default); clients may also send protocol `ping` messages.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types.unset import UNSET, UnsetType

from app import json_limits
from app.runtime import Runtime
from schema.context import Context

log = structlog.get_logger("engage.graphql_ws")

CONNECTION_INIT_TIMEOUT = timedelta(seconds=10)
MAX_SUBSCRIPTIONS_PER_CONNECTION = 20
NOT_A_SUBSCRIPTION = (
    "Only subscriptions run over the WebSocket: send queries and mutations over HTTP."
)


class SubscriptionsOnlyHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """`graphql-transport-ws`, refusing queries and mutations with an `error` message."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message["payload"]
        if self.connection_acknowledged and _is_query_or_mutation(
            payload.get("query"), payload.get("operationName"), self.context.settings.max_tokens
        ):
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [{"message": NOT_A_SUBSCRIPTION}]}
            )
            return
        await super().handle_subscribe(message)


def _is_query_or_mutation(query: Any, operation_name: Any, max_tokens: int) -> bool:
    """False for a subscription, and for anything strawberry should report itself (a syntax
    error, an unknown operation)."""
    if not isinstance(query, str) or not isinstance(operation_name, str | None):
        return False
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is not OperationType.SUBSCRIPTION


class GraphQLWebSocket(GraphQL[Context, None]):
    """The ASGI app behind the `/graphql` WebSocket route."""

    def decode_json(self, data: str | bytes) -> object:
        return json_limits.loads(data)  # json.loads raises RecursionError on deep input

    graphql_transport_ws_handler_class = SubscriptionsOnlyHandler

    def __init__(self, schema: BaseSchema, runtime: Runtime) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=CONNECTION_INIT_TIMEOUT,
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
            allowed_origins=("*",),
        )
        self.runtime = runtime

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        return Context(request=request, runtime=self.runtime, request_id=request_id)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Resolve the principal from `connection_init`; refuse a credential that isn't valid."""
        committed = False
        try:
            await context.principal()
            committed = context.auth_error is None
        finally:
            await context.finish(commit=committed)
        if context.auth_error is not None:
            log.info("graphql_ws.refused", reason=context.auth_error)
            raise ConnectionRejectionError({"reason": context.auth_error})
        context.streaming = True
        return UNSET
