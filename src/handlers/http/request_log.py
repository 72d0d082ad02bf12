"""One structured log line per request (never bodies, keys or responses); 500 on a crash."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.api_errors import problem_response

logger = Logger(service="cmt-collect")  # the parent: JSON to stdout


class RequestLogMiddleware:
    """Logs request id, method, route template, status and latency; turns a crash into 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = {"status": 500, "sent": False}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["sent"] = True
            await send(message)

        # API Gateway's request id (what a client can quote), else Lambda's, else a header
        gateway = (scope.get("aws.event") or {}).get("requestContext") or {}
        request_id = (
            gateway.get("requestId")
            or getattr(scope.get("aws.context"), "aws_request_id", None)
            or _header(scope, b"x-request-id")
        )
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if not status_holder["sent"]:
                response = problem_response(
                    500,
                    code="internal-error",
                    title="Internal error",
                    detail=f"the request failed; quote request id {request_id or 'n/a'}",
                )
                await response(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "route": getattr(route, "path", None) or "unmatched",
                    "status": status_holder["status"],
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return str(value.decode("latin-1"))
    return None
