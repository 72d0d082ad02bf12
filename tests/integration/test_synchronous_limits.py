"""The local stack and the tests refuse what Lambda and API Gateway would refuse.

A response is measured as the invoke response Mangum returns (checked against Mangum itself);
the time limit is tested with routes that never finish, or finish only when the test lets them,
under a small configured limit, so no test depends on the speed of the machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from fastapi.testclient import TestClient
from mangum import Mangum

from conftest import World
from handlers.api_app import create_app
from handlers.wiring import Container
from local.limits import (
    HTTP_API,
    INTEGRATION_TIMEOUT_SECONDS,
    LAMBDA_RESPONSE_LIMIT_BYTES,
    REST_API,
    TEXT_MIME_TYPES,
    SynchronousLimits,
    lambda_response_bytes,
    with_synchronous_limits,
)
from local.stack import free_port
from local.template import load_template

EVENTS = Path(__file__).resolve().parents[2] / "events"
TEXT = "Schätzung ✓ 😀 "  # one-, two-, three- and four-byte UTF-8 characters
PNG_LIKE = bytes(range(256)) * 40  # not UTF-8: Mangum must base64 it


def sample_app(*, text_bytes: int = 0) -> FastAPI:
    app = FastAPI()

    @app.get("/text")
    def text() -> Response:
        return PlainTextResponse(TEXT * 200)

    @app.get("/sized")
    def sized() -> Response:
        return PlainTextResponse("x" * text_bytes)

    @app.get("/binary")
    def binary() -> Response:
        return Response(PNG_LIKE, media_type="application/octet-stream")

    @app.get("/cookies")
    def cookies() -> Response:
        response = PlainTextResponse("ok")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    @app.get("/stream")
    def stream() -> Response:
        return StreamingResponse(iter([b"one,", b"two,", b"three"]), media_type="text/csv")

    @app.get("/never")
    async def never() -> Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    @app.get("/boom")
    def boom() -> Response:
        raise LookupError("route failed")

    @app.get("/after")
    async def after(tasks: BackgroundTasks) -> Response:
        tasks.add_task(anyio.sleep_forever)  # runs after the response, before the app returns
        return PlainTextResponse("sent")

    return app


def invoke_through_mangum(app: FastAPI, path: str) -> dict[str, Any]:
    """What the deployed API function returns: Mangum's handler on an HTTP API event."""
    event = json.loads((EVENTS / "api_health.json").read_text(encoding="utf-8"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    handler = Mangum(app, lifespan="off", text_mime_types=list(TEXT_MIME_TYPES))
    result: dict[str, Any] = handler(event, SimpleNamespace(aws_request_id="test"))
    return result


def measured(app: FastAPI, path: str) -> int:
    """lambda_response_bytes of the response the app gives to `path`, over plain ASGI."""
    with TestClient(app) as client:
        r = client.get(path)
    return lambda_response_bytes(
        status=r.status_code,
        headers=[(k.encode(), v.encode()) for k, v in r.headers.multi_items()],
        body=r.content,
    )


@pytest.mark.parametrize("path", ["/text", "/binary", "/cookies", "/stream"])
def test_a_response_is_measured_as_the_json_document_mangum_returns_to_lambda(path: str) -> None:
    app = sample_app()
    envelope = invoke_through_mangum(app, path)
    # The python3.12 runtime's encoding of the handler's result (awslambdaric: default
    # separators, ensure_ascii=False), applied to what Mangum really returned.
    expected = len(json.dumps(envelope, ensure_ascii=False).encode("utf-8"))
    assert measured(app, path) == expected
    if path == "/binary":
        assert envelope["isBase64Encoded"] is True
    if path == "/cookies":
        assert envelope["cookies"] == ["a=1; Path=/; SameSite=lax", "b=2; Path=/; SameSite=lax"]


def test_text_counts_its_utf8_bytes_and_binary_its_base64_characters() -> None:
    ct_text = (b"content-type", b"text/plain; charset=utf-8")
    ct_binary = (b"content-type", b"application/octet-stream")

    def size(body: bytes, content_type: tuple[bytes, bytes]) -> int:
        length = (b"content-length", b"%d" % len(body))
        return lambda_response_bytes(status=200, headers=[content_type, length], body=body)

    # 1,000 more "é" are 2,000 more UTF-8 bytes (content-length keeps its four digits)
    assert size("é".encode() * 2000, ct_text) - size("é".encode() * 1000, ct_text) == 2000
    # 3,000 more binary bytes are 4,000 more base64 characters
    assert size(b"\xff" * 6000, ct_binary) - size(b"\xff" * 3000, ct_binary) == 4000


def test_the_limits_are_six_mebibytes_and_a_hundred_bytes_and_thirty_seconds() -> None:
    assert LAMBDA_RESPONSE_LIMIT_BYTES == 6_291_556 == 6 * 2**20 + 100
    assert INTEGRATION_TIMEOUT_SECONDS == 30


def body_size_at_the_limit() -> int:
    """The text body whose response is exactly LAMBDA_RESPONSE_LIMIT_BYTES as Lambda sees it."""
    probe = 6_000_000  # same number of content-length digits as the answer
    headers = [
        (b"content-length", b"%d" % probe),
        (b"content-type", b"text/plain; charset=utf-8"),
    ]
    overhead = lambda_response_bytes(status=200, headers=headers, body=b"x" * probe) - probe
    return LAMBDA_RESPONSE_LIMIT_BYTES - overhead


def test_a_response_of_exactly_the_limit_passes_and_one_byte_more_is_the_http_apis_500() -> None:
    at_limit = body_size_at_the_limit()
    fits = TestClient(with_synchronous_limits(sample_app(text_bytes=at_limit))).get("/sized")
    assert fits.status_code == 200
    assert len(fits.content) == at_limit

    over = TestClient(with_synchronous_limits(sample_app(text_bytes=at_limit + 1))).get("/sized")
    assert over.status_code == 500
    assert over.content == b'{"message":"Internal Server Error"}'
    assert over.headers["content-type"] == "application/json"


def test_a_rest_api_would_answer_an_oversized_response_with_502() -> None:
    app = with_synchronous_limits(sample_app(), max_response_bytes=100, gateway=REST_API)
    r = TestClient(app).get("/text")
    assert r.status_code == 502
    assert r.json() == {"message": "Internal server error"}


def test_a_route_that_never_answers_gets_the_http_apis_503_at_the_deadline() -> None:
    app = with_synchronous_limits(sample_app(), timeout_seconds=0.05)
    r = TestClient(app).get("/never")
    assert r.status_code == 503
    assert r.content == b'{"message":"Service Unavailable"}'


def test_a_rest_api_would_answer_a_timeout_with_504() -> None:
    app = with_synchronous_limits(sample_app(), timeout_seconds=0.05, gateway=REST_API)
    r = TestClient(app).get("/never")
    assert r.status_code == 504
    assert r.json() == {"message": "Endpoint request timed out"}


def test_background_work_after_the_response_still_counts_toward_the_timeout() -> None:
    # Mangum hands Lambda the response only when the application returns
    app = with_synchronous_limits(sample_app(), timeout_seconds=0.05)
    assert TestClient(app).get("/after").status_code == 503


@pytest.fixture
def blocked_route_server() -> Iterator[tuple[str, threading.Event, threading.Event]]:
    """A real server whose one route (in a worker thread) runs until the test releases it."""
    started, release = threading.Event(), threading.Event()
    app = FastAPI()

    @app.get("/slow")
    def slow() -> dict[str, str]:
        started.set()
        release.wait()
        return {"done": "late"}

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            with_synchronous_limits(app, timeout_seconds=0.05),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{port}", started, release
    finally:
        release.set()
        server.should_exit = True
        thread.join(timeout=10)


def test_the_client_gets_the_503_while_the_route_is_still_running(
    blocked_route_server: tuple[str, threading.Event, threading.Event],
) -> None:
    base, started, release = blocked_route_server
    r = httpx.get(f"{base}/slow", timeout=30)
    assert r.status_code == 503
    assert started.is_set()
    assert not release.is_set()


def test_a_response_within_both_limits_passes_unchanged() -> None:
    plain = TestClient(sample_app()).get("/cookies")
    limited = TestClient(with_synchronous_limits(sample_app())).get("/cookies")
    assert (limited.status_code, limited.content) == (plain.status_code, plain.content)
    assert limited.headers.multi_items() == plain.headers.multi_items()
    streamed = TestClient(with_synchronous_limits(sample_app())).get("/stream")
    assert streamed.text == "one,two,three"


def test_a_failing_route_raises_its_own_exception_or_answers_500() -> None:
    app = with_synchronous_limits(sample_app())
    with pytest.raises(LookupError, match="route failed"):
        TestClient(app).get("/boom")
    assert TestClient(app, raise_server_exceptions=False).get("/boom").status_code == 500


def test_lifespan_passes_through() -> None:
    seen: list[str] = []
    app = FastAPI(on_startup=[lambda: seen.append("startup")])
    with TestClient(with_synchronous_limits(app)):
        pass
    assert seen == ["startup"]


def test_the_real_api_is_refused_when_its_response_is_over_a_limit(container: Container) -> None:
    client = TestClient(with_synchronous_limits(create_app(container), max_response_bytes=2_000))
    assert client.get("/v1/health").status_code == 200
    refused = client.get("/v1/instruments")  # the whole catalogue: far more than 2,000 bytes
    assert refused.status_code == HTTP_API.response_too_large.status
    assert refused.content == HTTP_API.response_too_large.body


def test_the_tests_app_is_behind_the_default_limits(world: World) -> None:
    app = world.client.app
    assert isinstance(app, SynchronousLimits)
    assert isinstance(app.app, FastAPI)
    assert (app.max_response_bytes, app.timeout_seconds, app.gateway) == (
        LAMBDA_RESPONSE_LIMIT_BYTES,
        INTEGRATION_TIMEOUT_SECONDS,
        HTTP_API,
    )


def test_the_measure_uses_the_deployed_handlers_text_types_runtime_and_gateway() -> None:
    import handlers.api

    assert list(TEXT_MIME_TYPES) == handlers.api.TEXT_MIME_TYPES
    template = load_template()
    runtime = template["Globals"]["Function"]["Runtime"]
    # python3.12 and later encode the result with ensure_ascii=False (UTF-8 bytes, not \\u
    # escapes); on older runtimes the count would differ for non-ASCII text
    assert runtime.startswith("python3.")
    assert int(runtime.removeprefix("python3.")) >= 12
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    assert {event["Type"] for event in events} == {"HttpApi"}
