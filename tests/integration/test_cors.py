"""CORS (API.md v1.1, "Browser front ends"): the template's CorsConfiguration, and the local
stack answering as API Gateway's HTTP API does with it (``local.cors``).

The template tests read template.yaml as written and as the SAM transform turns it into the
HTTP API's OpenAPI body. The local tests send what a browser sends (a preflight, then the
request) to the app as the local stack serves it, through the ASGI layer and over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from conftest import World, assert_problem, make_trial
from handlers.api_app import create_app
from local.cors import CorsConfiguration, behind_http_api, cors_configuration
from local.template import load_template
from services.rate_limit import RateLimiter, RatePolicy

FRONT_END = "https://forms.example.org"
SECOND_FRONT_END = "http://127.0.0.1:5173"
ALLOWED = f"{FRONT_END},{SECOND_FRONT_END}"
OTHER = "https://evil.example.net"
CONTRACT_REQUEST_HEADERS = {"authorization", "content-type", "idempotency-key"}


def cors_headers(response: Any) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def preflight(client: Any, path: str, *, origin: str, method: str = "POST") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )


class CountingApp:
    """The ASGI app with a count of the requests that reached it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


@pytest.fixture
def counted(world: World) -> CountingApp:
    return CountingApp(create_app(world.container))


@pytest.fixture
def browser(counted: CountingApp) -> TestClient:
    """The API as `make run` serves it with CMT_ALLOWED_ORIGINS=ALLOWED."""
    return TestClient(
        behind_http_api(counted, allowed_origins=ALLOWED), raise_server_exceptions=False
    )


# -- the template ----------------------------------------------------------------------------


def test_the_template_allows_the_configured_origins_with_the_contracts_methods_and_headers(
    world: World,
) -> None:
    configuration = cors_configuration(allowed_origins=ALLOWED)
    assert configuration == CorsConfiguration(
        allow_origins=(FRONT_END, SECOND_FRONT_END),
        allow_methods=("GET", "POST", "PUT", "PATCH", "DELETE"),
        allow_headers=("Authorization", "Content-Type", "Idempotency-Key", "Prefer"),
        expose_headers=("Location", "Retry-After", "WWW-Authenticate", "Idempotent-Replayed"),
        max_age=600,
        allow_credentials=False,
    )
    # every method of every route of the app may be called from a page
    app = create_app(world.container)
    methods = {m for r in app.routes if isinstance(r, APIRoute) for m in r.methods}
    assert methods <= set(configuration.allow_methods)
    assert {h.lower() for h in configuration.allow_headers} >= CONTRACT_REQUEST_HEADERS


def test_the_template_has_no_cors_configuration_when_no_origin_is_allowed() -> None:
    assert cors_configuration(allowed_origins="") is None
    assert load_template()["Parameters"]["AllowedOrigins"]["Default"] == ""


@pytest.mark.parametrize(
    "value",
    [
        "https://forms.example.org/",  # a trailing slash: never what a browser sends
        "https://forms.example.org/app",  # a path
        "https://forms.example.org, https://b.example.org",  # a space
        "forms.example.org",  # no scheme
        "*",
        "https://a.example.org,",
    ],
)
def test_allowed_origins_that_a_browser_would_never_send_are_refused_as_cloudformation_would(
    value: str,
) -> None:
    with pytest.raises(ValueError, match="AllowedOrigins"):
        cors_configuration(allowed_origins=value)


def translate(parameter_values: dict[str, str]) -> dict[str, Any]:
    """template.yaml after the SAM transform, offline (as tests/integration/test_template.py)."""
    sam = copy.deepcopy(load_template())
    sam["Globals"]["Function"]["CodeUri"] = "s3://cmt-artifacts/cmt-collect.zip"
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name="eu-west-2"),
    )
    return translator.translate(
        sam,
        parameter_values={"MailSender": "alerts@example.org", **parameter_values},
        get_managed_policy_map=lambda: {},
    )


def test_the_sam_transform_hands_api_gateway_the_whole_cors_configuration_and_a_list() -> None:
    # SAM takes an intrinsic in AllowOrigins for the whole configuration, and substitutes a
    # parameter's value as one string: the template must split a String parameter itself.
    body = translate({"AllowedOrigins": ALLOWED})["Resources"]["HttpApi"]["Properties"]["Body"]
    assert body["x-amazon-apigateway-cors"] == {
        "Fn::If": [
            "HasAllowedOrigins",
            {
                "allowOrigins": {"Fn::Split": [",", ALLOWED]},
                "allowMethods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
                "allowHeaders": ["Authorization", "Content-Type", "Idempotency-Key", "Prefer"],
                "exposeHeaders": [
                    "Location",
                    "Retry-After",
                    "WWW-Authenticate",
                    "Idempotent-Replayed",
                ],
                "maxAge": 600,
                "allowCredentials": False,
            },
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert load_template()["Conditions"]["HasAllowedOrigins"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AllowedOrigins"}, ""]}]
    }


# -- preflights ------------------------------------------------------------------------------


def test_a_preflight_from_an_allowed_origin_is_a_204_with_the_allowed_methods_and_headers(
    browser: TestClient, counted: CountingApp
) -> None:
    r = preflight(browser, "/v1/trials/cmt-pilot/submissions", origin=FRONT_END)
    assert r.status_code == 204
    assert r.content == b""
    assert cors_headers(r) == {
        "access-control-allow-origin": FRONT_END,
        "access-control-allow-methods": "GET,POST,PUT,PATCH,DELETE",
        "access-control-allow-headers": "Authorization,Content-Type,Idempotency-Key,Prefer",
        "access-control-max-age": "600",
    }
    assert r.headers["vary"] == "origin"
    assert counted.calls == 0  # answered by the gateway, never by the function
    # the second allowed origin, on a path the app does not have: still the gateway's 204
    r = preflight(browser, "/v1/no-such-route", origin=SECOND_FRONT_END, method="DELETE")
    assert (r.status_code, r.headers["access-control-allow-origin"]) == (204, SECOND_FRONT_END)
    assert counted.calls == 0


def test_a_preflight_from_another_origin_is_a_204_without_any_cors_header(
    browser: TestClient, counted: CountingApp
) -> None:
    r = preflight(browser, "/v1/trials/cmt-pilot/submissions", origin=OTHER)
    assert r.status_code == 204
    assert cors_headers(r) == {}
    assert "vary" not in r.headers
    assert counted.calls == 0
    # an allowed origin's name inside another is not that origin
    r = preflight(browser, "/v1/instruments", origin=f"{FRONT_END}.evil.example.net")
    assert cors_headers(r) == {}


def test_an_options_request_that_is_no_preflight_reaches_the_app_and_is_405(
    browser: TestClient, counted: CountingApp
) -> None:
    # no Origin: API Gateway returns no CORS headers and routes it like any request
    r = browser.options("/v1/instruments", headers={"Access-Control-Request-Method": "GET"})
    assert_problem(r, 405)
    assert cors_headers(r) == {}
    # an Origin but no Access-Control-Request-Method: not a preflight either
    r = browser.options("/v1/instruments", headers={"Origin": FRONT_END})
    assert_problem(r, 405)
    assert r.headers["access-control-allow-origin"] == FRONT_END
    assert counted.calls == 2


def test_without_allowed_origins_a_preflight_reaches_the_app_and_is_a_405_without_cors(
    world: World,
) -> None:
    client = TestClient(behind_http_api(create_app(world.container), allowed_origins=""))
    r = preflight(client, "/v1/instruments", origin=FRONT_END, method="GET")
    assert_problem(r, 405)
    assert cors_headers(r) == {}
    assert cors_headers(client.get("/v1/instruments", headers={"Origin": FRONT_END})) == {}


# -- requests --------------------------------------------------------------------------------


def test_an_answer_to_an_allowed_origin_names_it_and_exposes_the_contracts_headers(
    browser: TestClient,
) -> None:
    r = browser.get("/v1/instruments", headers={"Origin": FRONT_END})
    assert r.status_code == 200
    assert cors_headers(r) == {
        "access-control-allow-origin": FRONT_END,
        "access-control-expose-headers": (
            "Location,Retry-After,WWW-Authenticate,Idempotent-Replayed"
        ),
    }
    assert r.headers.get_list("vary") == ["origin"]


def test_an_answer_to_another_origin_or_to_no_origin_has_no_cors_header(
    browser: TestClient,
) -> None:
    for headers in ({"Origin": OTHER}, {}):
        r = browser.get("/v1/instruments", headers=headers)
        assert r.status_code == 200
        assert cors_headers(r) == {}
        assert "vary" not in r.headers


def test_refusals_carry_the_cors_headers_so_a_page_can_read_them(
    world: World, browser: TestClient
) -> None:
    keys = make_trial(world.client, world.container)
    origin = {"Origin": FRONT_END}
    submissions = f"/v1/trials/{keys.trial_id}/submissions"
    unauthenticated = browser.post(submissions, headers=origin, json={})
    invalid = browser.post(submissions, headers={**origin, **keys.submitter}, json={})
    missing = browser.get("/v1/instruments/no-such-instrument", headers=origin)
    for response, status in ((unauthenticated, 401), (invalid, 422), (missing, 404)):
        assert_problem(response, status)
        assert response.headers["access-control-allow-origin"] == FRONT_END
    # 401's WWW-Authenticate is readable by the page
    assert "WWW-Authenticate" in unauthenticated.headers["access-control-expose-headers"]
    # a key over its rate: 429 with a Retry-After that the page may read
    world.container.key_limits = RateLimiter(RatePolicy(per_second=1, burst=1), monotonic=lambda: 0)
    summary = f"/v1/trials/{keys.trial_id}/summary"
    statuses = [browser.get(summary, headers={**origin, **keys.coordinator}) for _ in range(2)]
    assert [r.status_code for r in statuses] == [200, 429]
    limited = statuses[1]
    assert_problem(limited, 429)
    assert limited.headers["access-control-allow-origin"] == FRONT_END
    assert "Retry-After" in limited.headers["access-control-expose-headers"]
    assert limited.headers["retry-after"]
    # the other origin reads none of them
    r = browser.post(submissions, headers={"Origin": OTHER}, json={})
    assert (r.status_code, cors_headers(r)) == (401, {})


def gateway_sample_app() -> FastAPI:
    """Routes that make API Gateway answer itself, and one that sends CORS headers of its own."""
    app = FastAPI()

    @app.get("/large")
    def large() -> Response:
        return Response(b"x" * 2_000, media_type="text/plain")

    @app.get("/slow")
    async def slow() -> Response:
        await asyncio.sleep(1)
        return Response(b"late", media_type="text/plain")

    @app.get("/own-cors")
    def own_cors() -> Response:
        return Response(
            b"{}",
            media_type="application/json",
            headers={"Access-Control-Allow-Origin": "*", "Access-Control-Max-Age": "86400"},
        )

    return app


def test_api_gateways_own_500_and_503_carry_the_cors_headers_too() -> None:
    client = TestClient(
        behind_http_api(
            gateway_sample_app(),
            allowed_origins=ALLOWED,
            max_response_bytes=1_000,
            timeout_seconds=0.05,
        )
    )
    too_large = client.get("/large", headers={"Origin": FRONT_END})
    assert too_large.status_code == 500
    assert too_large.json() == {"message": "Internal Server Error"}
    timed_out = client.get("/slow", headers={"Origin": FRONT_END})
    assert timed_out.status_code == 503
    assert timed_out.json() == {"message": "Service Unavailable"}
    for r in (too_large, timed_out):
        assert r.headers["access-control-allow-origin"] == FRONT_END
        assert r.headers["vary"] == "origin"
    assert cors_headers(client.get("/large", headers={"Origin": OTHER})) == {}


def test_cors_headers_of_the_function_are_ignored_so_each_header_reaches_the_browser_once() -> None:
    client = TestClient(behind_http_api(gateway_sample_app(), allowed_origins=ALLOWED))
    r = client.get("/own-cors", headers={"Origin": FRONT_END})
    assert r.headers.get_list("access-control-allow-origin") == [FRONT_END]
    assert "access-control-max-age" not in r.headers
    assert cors_headers(client.get("/own-cors", headers={"Origin": OTHER})) == {}


def test_the_api_function_itself_sends_no_cors_header(world: World) -> None:
    # On AWS the gateway adds them; the function adding its own would mean double headers
    # wherever the gateway is not the one answering.
    app = TestClient(create_app(world.container))
    assert cors_headers(app.get("/v1/instruments", headers={"Origin": FRONT_END})) == {}
    r = preflight(app, "/v1/instruments", origin=FRONT_END, method="GET")
    assert (r.status_code, cors_headers(r)) == (405, {})


# -- over HTTP, as `make run` serves it ------------------------------------------------------


@pytest.fixture
def served(world: World) -> Iterator[str]:
    """The API on a loopback port behind the local stack's gateway layer (uvicorn, as
    `cmt-collect serve` runs it)."""
    app = behind_http_api(create_app(world.container), allowed_origins=ALLOWED)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_over_http_a_preflight_and_the_request_that_follows_get_what_a_browser_needs(
    served: str,
) -> None:
    with httpx.Client(base_url=served, timeout=10) as http:
        r = preflight(http, "/v1/trials/cmt-pilot/submissions", origin=SECOND_FRONT_END)
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == SECOND_FRONT_END
        assert "Idempotency-Key" in r.headers["access-control-allow-headers"]
        assert r.content == b""
        r = http.post(
            "/v1/trials/cmt-pilot/submissions", headers={"Origin": SECOND_FRONT_END}, json={}
        )
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == SECOND_FRONT_END
        r = preflight(http, "/v1/trials/cmt-pilot/submissions", origin=OTHER)
        assert (r.status_code, cors_headers(r)) == (204, {})


def test_the_openapi_document_states_what_the_cors_configuration_allows(world: World) -> None:
    configuration = cors_configuration(allowed_origins=ALLOWED)
    assert configuration is not None
    description = create_app(world.container).openapi()["info"]["description"]
    for name in (
        *configuration.allow_methods,
        *configuration.allow_headers,
        *configuration.expose_headers,
    ):
        assert name in description
    assert f"cached {configuration.max_age} s" in description
