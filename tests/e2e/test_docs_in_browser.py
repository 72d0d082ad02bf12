"""/docs in Debian's Chromium with nothing but this API reachable: Swagger UI draws every
operation of /openapi.json, and the page asks for nothing from anywhere else."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Route, sync_playwright

from conftest import CHROMIUM, CHROMIUM_ARGS, settings_for_tests
from handlers.api_app import create_app
from handlers.wiring import build
from local.cors import behind_http_api


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    """The API on a loopback port, as `make run` serves it (building it calls no AWS)."""
    app = behind_http_api(create_app(build(settings_for_tests())), allowed_origins="")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


def test_swagger_ui_draws_every_operation_with_every_other_host_blocked(api: str) -> None:
    assert pathlib.Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run `make browser` (as root)"
    elsewhere: list[str] = []

    def only_this_api(route: Route) -> None:
        if route.request.url.startswith(f"{api}/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_this_api)
            page.goto(f"{api}/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            drawn = page.locator(".opblock").count()
            title = page.locator(".info .title").inner_text()
            operations = page.evaluate(
                "async () => { const d = await (await fetch('/openapi.json')).json();"
                " return Object.values(d.paths).reduce((n, p) => n + Object.keys(p).length, 0) }"
            )
        finally:
            browser.close()
    assert elsewhere == []
    assert drawn == operations > 0
    assert title.startswith("cmt-collect")
