"""/docs and /redoc work offline: their pages load Swagger UI and ReDoc from this API only."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest
from fastapi.testclient import TestClient

from conftest import settings_for_tests
from handlers.api_app import create_app
from handlers.wiring import build
from local.cors import behind_http_api

ASSETS = files("fastapi_offline") / "static"


@pytest.fixture(scope="module")
def client() -> TestClient:
    # building the app calls no AWS service; served behind the local stack's gateway layer, so
    # the assets also pass Lambda's response limit as the deployed function would send them
    return TestClient(behind_http_api(create_app(build(settings_for_tests())), allowed_origins=""))


def referenced_urls(html: str) -> list[str]:
    """Every URL the page makes a browser fetch: src, href and ReDoc's spec-url attributes,
    Swagger UI's url."""
    attributes = re.findall(r"""\b(?:src|href|spec-url)\s*=\s*["']([^"']*)["']""", html)
    return attributes + re.findall(r"""\burl:\s*'([^']*)'""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_refer_only_to_this_apis_own_paths(
    client: TestClient, page: str
) -> None:
    r = client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    urls = referenced_urls(r.text)
    assert len(urls) >= 3  # script, stylesheet or favicon, and the OpenAPI document
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert not re.search(r"https?://|//cdn|fonts\.googleapis", r.text), r.text
    assert "/openapi.json" in urls


def test_swagger_ui_is_told_not_to_call_the_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


@pytest.mark.parametrize(
    ("page", "asset", "content_type"),
    [
        ("/docs", "swagger-ui-bundle.js", "text/javascript"),
        ("/docs", "swagger-ui.css", "text/css"),
        ("/docs", "favicon.png", "image/png"),
        ("/redoc", "redoc.standalone.js", "text/javascript"),
    ],
)
def test_every_asset_a_page_names_answers_200_with_its_content_type_and_the_packages_bytes(
    client: TestClient, page: str, asset: str, content_type: str
) -> None:
    path = f"/docs/assets/{asset}"
    assert path in referenced_urls(client.get(page).text)
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == content_type
    assert r.content == (ASSETS / asset).read_bytes()


def test_swagger_ui_is_a_release_that_renders_openapi_3_1(client: TestClient) -> None:
    # Swagger UI 4 renders no OpenAPI 3.1 document ("does not specify a valid version field"),
    # and FastAPI writes 3.1
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
    (version,) = set(re.findall(r'PACKAGE_VERSION:"(\d+)\.\d+\.\d+"', bundle))
    assert int(version) >= 5


def test_the_documentation_pages_stay_out_of_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not {p for p in paths if p.startswith(("/docs", "/redoc"))}
