"""The synchronous limits of API Gateway and Lambda, enforced where moto would let them pass.

On AWS every API request is one synchronous invocation of the API function behind the HTTP API
(``template.yaml``: ``AWS::Serverless::HttpApi``). Two limits then hold that nothing local
enforces by itself:

- the invocation's **response** is at most 6,291,556 bytes (6 MiB + 100 bytes). What counts is
  the JSON document the function returns, which is Mangum's envelope around the HTTP response
  (status, headers, cookies, body; a binary body base64-encoded, three bytes becoming four)
  serialised by the Python runtime. A larger response fails the invocation and API Gateway
  answers the client with its own error instead;
- API Gateway waits at most **30 seconds** (the HTTP API's integration timeout, not
  adjustable). The client then gets API Gateway's timeout answer while the function may still
  be running.

:class:`SynchronousLimits` is ASGI middleware that buffers each response, measures it as Lambda
would see it and answers as API Gateway would. The local stack (``cmt-collect serve`` and the
demo) and the tests' app are wrapped with :func:`with_synchronous_limits`, so a route that
breaks a limit fails here as it would after deployment. It is never part of the deployed code.

What API Gateway answers (the body is always JSON):

- HTTP API (:data:`HTTP_API`, the template's): a response over the limit, like any failed
  invocation, 500 ``{"message":"Internal Server Error"}``; a timeout 503
  ``{"message":"Service Unavailable"}``.
- REST API (:data:`REST_API`): 502 ``{"message": "Internal server error"}`` and 504
  ``{"message": "Endpoint request timed out"}``.

The request side (6 MB for the invocation event, 10 MB for the HTTP API payload) is not
modelled: the API refuses bodies over 256 KiB itself (``handlers.api_errors``).

References
----------
.. [1] AWS Lambda Developer Guide, "Lambda quotas": invocation payload (request and response)
   6 MB each for synchronous invocations.
   https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
.. [2] AWS Lambda API Reference, "Invoke": "For synchronous invocations, the maximum payload
   size is 6 MB." https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html
.. [3] The exact figure, 6,291,556 bytes, is the Lambda runtime API's answer to a larger
   response: ``413 {"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",
   "errorType":"RequestEntityTooLarge"}`` (quoted in, e.g., anomalyco/console#63 and
   DataBiosphere/azul#8258); LocalStack's default is the same ``6 * 1024 * 1024 + 100``
   (localstack/localstack#10229).
.. [4] Amazon API Gateway Developer Guide, "Quotas for configuring and running an HTTP API":
   maximum integration timeout 30 seconds, not adjustable.
   https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
.. [5] Amazon API Gateway Developer Guide, "Troubleshooting issues with HTTP API Lambda
   integrations": a failed Lambda integration answers ``{"message":"Internal Server Error"}``.
   https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html
   The status is 500 for an HTTP API and 502 (``"Internal server error"``) for a REST API, as
   AWS's own emulator of both reproduces them (aws/aws-lambda-dotnet,
   ``Tools/LambdaTestTool-v2``, ``InvokeResponseExtensions.ToHttpApiV2ErrorResponse``, which
   also answers a response over the limit this way).
.. [6] An HTTP API past its integration timeout answers ``503 {"message":"Service
   Unavailable"}`` (33 bytes; captured in cortexlabs/cortex#1225); a REST API answers 504,
   AWS Knowledge Center, "How do I troubleshoot HTTP 504 errors from API Gateway?".
   https://repost.aws/knowledge-center/api-gateway-504-errors
.. [7] aws/aws-lambda-python-runtime-interface-client, ``awslambdaric/
   lambda_runtime_marshaller.py``: the result is JSON-encoded with default separators and,
   on python3.12 and later runtimes (the template's is python3.12), ``ensure_ascii=False``,
   so text counts its UTF-8 bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from mangum.handlers.api_gateway import HTTPGateway
from mangum.types import LambdaConfig

__all__ = [
    "HTTP_API",
    "INTEGRATION_TIMEOUT_SECONDS",
    "LAMBDA_RESPONSE_LIMIT_BYTES",
    "REST_API",
    "TEXT_MIME_TYPES",
    "Gateway",
    "GatewayAnswer",
    "SynchronousLimits",
    "lambda_response_bytes",
    "with_synchronous_limits",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024 + 100  # 6,291,556 [3]
INTEGRATION_TIMEOUT_SECONDS = 30.0  # [4]
# The media types Mangum passes as text; everything else it base64-encodes. Must equal
# handlers.api.TEXT_MIME_TYPES (a test checks it; importing handlers.api here would build a
# container).
TEXT_MIME_TYPES: tuple[str, ...] = (*DEFAULT_TEXT_MIME_TYPES, "application/problem+json")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayAnswer:
    """What API Gateway sends the client instead of the function's response."""

    status: int
    body: bytes

    def messages(self) -> tuple[Message, Message]:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(self.body)),
        ]
        return (
            {"type": "http.response.start", "status": self.status, "headers": headers},
            {"type": "http.response.body", "body": self.body, "more_body": False},
        )


@dataclass(frozen=True)
class Gateway:
    """An API Gateway flavour: its answers to an oversized response and to a timeout."""

    name: str
    response_too_large: GatewayAnswer
    timed_out: GatewayAnswer


HTTP_API = Gateway(
    name="API Gateway HTTP API",
    response_too_large=GatewayAnswer(500, b'{"message":"Internal Server Error"}'),  # [5]
    timed_out=GatewayAnswer(503, b'{"message":"Service Unavailable"}'),  # [6]
)
REST_API = Gateway(
    name="API Gateway REST API",
    response_too_large=GatewayAnswer(502, b'{"message": "Internal server error"}'),  # [5]
    timed_out=GatewayAnswer(504, b'{"message": "Endpoint request timed out"}'),  # [6]
)

# The smallest HTTP API (payload format 2.0) event Mangum's handler accepts; only its version
# matters for the shape of the response envelope.
_V2_EVENT: dict[str, Any] = {
    "version": "2.0",
    "headers": {},
    "requestContext": {"http": {"sourceIp": "127.0.0.1", "path": "/", "method": "GET"}},
}


def lambda_response_bytes(
    *,
    status: int,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    text_mime_types: Sequence[str] = TEXT_MIME_TYPES,
) -> int:
    """Bytes of the invoke response the API function returns for one HTTP response.

    Mangum's own HTTP API handler builds the envelope (so cookies, header folding and base64
    are exactly the deployed function's), and it is encoded as the python3.12 runtime encodes a
    handler's result [7]_.
    """
    config = cast(
        LambdaConfig,
        {"api_gateway_base_path": "/", "text_mime_types": list(text_mime_types)},
    )
    envelope = HTTPGateway(_V2_EVENT, cast(Any, None), config)(
        {"status": status, "headers": [list(pair) for pair in headers], "body": body}
    )
    return len(json.dumps(envelope, ensure_ascii=False).encode("utf-8"))


@dataclass
class _Buffered:
    """The response messages of one request, held back until the application has returned."""

    start: Message | None = None
    chunks: list[bytes] = field(default_factory=list)
    dropped: bool = False
    returned: anyio.Event = field(default_factory=anyio.Event)

    async def send(self, message: Message) -> None:
        if self.dropped:
            return  # the client has had the gateway's timeout answer; this goes nowhere
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.chunks.append(bytes(message.get("body", b"")))


@dataclass(frozen=True)
class SynchronousLimits:
    """ASGI middleware answering as API Gateway does when a response breaks Lambda's limits.

    Parameters
    ----------
    app
        The ASGI application (the FastAPI app of ``handlers.api_app.create_app``).
    max_response_bytes
        Largest invoke response, measured by :func:`lambda_response_bytes`.
    timeout_seconds
        Time from the request to the complete response; past it the client gets the gateway's
        timeout answer at once, while the route keeps running to its end (as the function
        does on AWS) and its response is dropped.
    gateway
        Whose answers to send: :data:`HTTP_API` (the template's) or :data:`REST_API`.
    text_mime_types
        Media types the Lambda handler passes as text (:data:`TEXT_MIME_TYPES`).
    """

    app: ASGIApp
    max_response_bytes: int = LAMBDA_RESPONSE_LIMIT_BYTES
    timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS
    gateway: Gateway = HTTP_API
    text_mime_types: tuple[str, ...] = TEXT_MIME_TYPES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = _Buffered()
        failures: list[Exception] = []

        async def serve() -> None:
            try:
                await self.app(scope, receive, response.send)
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the answer
                failures.append(exc)
            finally:
                response.returned.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(serve)
            # Mangum returns the response when the application returns (background tasks
            # included), so that is what the timeout measures.
            with anyio.move_on_after(self.timeout_seconds):
                await response.returned.wait()
            if not response.returned.is_set():
                response.dropped = True
                self._explain(scope, f"no response within {self.timeout_seconds:g} s")
                for message in self.gateway.timed_out.messages():
                    await send(message)
                tasks.cancel_scope.cancel()  # a route in a thread still runs to its end
                return
        await self._answer(scope, response, send)
        if failures:
            raise failures[0]

    async def _answer(self, scope: Scope, response: _Buffered, send: Send) -> None:
        if response.start is None:
            return  # nothing was sent: the server reports the failure itself
        body = b"".join(response.chunks)
        size = lambda_response_bytes(
            status=int(response.start["status"]),
            headers=[(bytes(k), bytes(v)) for k, v in response.start.get("headers", [])],
            body=body,
            text_mime_types=self.text_mime_types,
        )
        if size > self.max_response_bytes:
            self._explain(
                scope,
                f"the function's response would be {size:,} bytes, over Lambda's "
                f"{self.max_response_bytes:,}",
            )
            for message in self.gateway.response_too_large.messages():
                await send(message)
            return
        await send(response.start)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _explain(self, scope: Scope, reason: str) -> None:
        # method and path only: query strings and bodies stay out of the log
        log.warning(
            "%s would refuse %s %s: %s", self.gateway.name, scope["method"], scope["path"], reason
        )


def with_synchronous_limits(
    app: ASGIApp,
    *,
    max_response_bytes: int = LAMBDA_RESPONSE_LIMIT_BYTES,
    timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
    gateway: Gateway = HTTP_API,
) -> SynchronousLimits:
    """``app`` behind AWS's synchronous limits: what the local stack and the tests serve."""
    return SynchronousLimits(
        app, max_response_bytes=max_response_bytes, timeout_seconds=timeout_seconds, gateway=gateway
    )
