"""The reference front end (examples/web-form) in Debian's Chromium, used as a participant uses it.

The page is served as it is published, with LHC-Forms from its own node_modules (`make
web-form`: `npm ci` from its lock), by a real HTTP server on one loopback port: its origin. The
API runs on another port, over real HTTP, as the local stack serves it (`behind_http_api`: the
HTTP API's CORS answered from the template's own configuration), with that origin allowed, on
moto. The participant types the enrolment code their coordinator created, picks HADS and then
the diary from what /v1/me says is due, answers every question LHC-Forms draws by clicking and
typing, and sends it; the test pumps the stream and reads the scores through the coordinator's
route, against scores it computes from the answers it gave by the published keys.

The same page from an origin the API does not allow gets nowhere: the browser refuses, the
page says so, and nothing reaches the store.

The browser's clock is set to the test clock (a QuestionnaireResponse's `authored` is the
browser's now, and the server refuses one in its future), so nothing depends on today's date.
Every wait is for a condition of the page, never for time.
"""

from __future__ import annotations

import functools
import http.server
import pathlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from conftest import CHROMIUM, CHROMIUM_ARGS, World, access_code, bearer, make_trial, moto_world
from handlers.api_app import create_app
from local.cors import behind_http_api

REPO = pathlib.Path(__file__).resolve().parents[2]
WEB_FORM = REPO / "examples" / "web-form"
LHC_FORMS = WEB_FORM / "node_modules" / "lforms" / "dist" / "lforms" / "webcomponent"
TRIAL = "web-form-pilot"
CHOSEN = re.compile(r"\bant-radio-wrapper-checked\b")
WAIT_MS = 20_000  # the longest any page condition may take before the test fails
expect.set_options(timeout=WAIT_MS)

# What the participant answers (item number -> the score of the option they click). HADS prints
# some items' options from 3 down and others from 0 up: clicking by label, not by position,
# makes the test fail if a code and its label ever part.
HADS_ANSWERS = {
    **{1: 3, 2: 0, 3: 2, 4: 1, 5: 3, 6: 2, 7: 1},
    **{8: 0, 9: 2, 10: 3, 11: 1, 12: 2, 13: 0, 14: 1},
}
# The published HADS key (Zigmond & Snaith 1983, Acta Psychiatr Scand 67:361-370): anxiety is
# the sum of the odd-numbered items, depression of the even-numbered ones, each item 0-3.
HADS_KEY = {"anxiety": (1, 3, 5, 7, 9, 11, 13), "depression": (2, 4, 6, 8, 10, 12, 14)}
DIARY_ANSWERS = {
    **{1: 7, 2: 6, 3: 5, 4: 8, 5: 6, 6: 4, 7: 3},
    **{8: 2, 9: 3, 10: 1, 11: 2, 12: 4, 13: 3, 14: 10},
}
# The study's appendix 2 diary: each domain is the plain sum of its seven 1-10 ratings (a-g).
DIARY_KEY = {"self_criticism": (1, 2, 3, 4, 5, 6, 7), "self_compassion": tuple(range(8, 15))}
DIARY_NOTES = {
    "critical_situations": "A difficult meeting on Tuesday",
    "critical_thoughts": "I should have said it better",
    "soothing_situations": "A walk by the river",
    "soothing_thoughts": "I did what I could",
}


def keyed(answers: dict[int, int], key: dict[str, tuple[int, ...]]) -> dict[str, float]:
    return {subscale: float(sum(answers[i] for i in items)) for subscale, items in key.items()}


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged."""


@dataclass(frozen=True)
class Stack:
    world: World
    api: str  # the API's base URL
    front_end: str  # the origin serving the page, allowed by the API
    elsewhere: str  # another origin serving the same page, not allowed
    coordinator: dict[str, str]


def _serve_files(directory: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A real HTTP server on a free loopback port serving ``directory``, and its origin."""
    handler = functools.partial(_QuietFiles, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    assert (LHC_FORMS / "lhc-forms.js").exists(), "LHC-Forms missing: run `make web-form`"
    with moto_world() as world:
        keys = make_trial(
            world.client, world.container, trial_id=TRIAL, participants=("P01", "P02")
        )
        front_end_server, front_end = _serve_files(WEB_FORM)
        elsewhere_server, elsewhere = _serve_files(WEB_FORM)
        app = behind_http_api(create_app(world.container), allowed_origins=front_end)
        api = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=api.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not api.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = api.servers[0].sockets[0].getsockname()[1]
        try:
            yield Stack(
                world=world,
                api=f"http://127.0.0.1:{port}",
                front_end=front_end,
                elsewhere=elsewhere,
                coordinator=keys.coordinator,
            )
        finally:
            api.should_exit = True
            thread.join(timeout=10)
            for server in (front_end_server, elsewhere_server):
                server.shutdown()
                server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # no skip when Chromium is missing: `make test` installs it
    assert pathlib.Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run `make browser` (as root)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    opened.clock.set_fixed_time(stack.world.clock())
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], errors  # the page and LHC-Forms ran without a script error


def catalogue_form(stack: Stack, instrument: str) -> list[dict[str, Any]]:
    """The items of an instrument's form as the public catalogue publishes them."""
    r = httpx.get(f"{stack.api}/v1/instruments/{instrument}")
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["form"]["items"]
    return items


def open_page(page: Page, origin: str, stack: Stack) -> None:
    page.goto(f"{origin}/index.html?api={stack.api}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def sign_in(page: Page, code: str) -> None:
    page.get_by_label("Your code").press_sequentially(code.lower().replace("-", " "))
    page.get_by_role("button", name="Start").click()


def fill(page: Page, items: list[dict[str, Any]], answers: dict[int, int]) -> None:
    """Answer every item LHC-Forms draws, as a participant: read the question, click the
    option whose label they mean (or type in the box)."""
    for item in items:
        # LHC-Forms gives each item's element the id item-<linkId>/1
        drawn = page.locator(f'[id="item-{item["link_id"]}/1"]')
        expect(drawn.locator(".question").first).to_have_text(item["text"])
        if item["type"] == "choice":
            score = answers[item["number"]]
            (label,) = (o["label"] for o in item["options"] if o["score"] == score)
            option = drawn.get_by_role("radio", name=label, exact=True)
            option.click()
            # what the participant sees: LHC-Forms (ng-zorro) marks the option's label as
            # chosen; the native input's own `checked` is not kept in step on a first choice
            expect(option.locator("xpath=ancestor::label[1]")).to_have_class(CHOSEN)
        else:
            drawn.get_by_role("textbox").press_sequentially(DIARY_NOTES[item["field"]])


def fill_and_send(page: Page, stack: Stack, instrument: str, answers: dict[int, int]) -> None:
    page.locator(f"#due button[data-instrument={instrument}]").click()
    expect(page.locator("#formContainer")).to_have_attribute("data-loaded", f"{instrument}#week-1")
    fill(page, catalogue_form(stack, instrument), answers)
    page.get_by_role("button", name="Send my answers").click()
    expect(page.locator("#notice")).to_contain_text("your answers to")
    expect(page.locator(f'#due li[data-slot="{instrument}#week-1"]')).to_contain_text("sent")


def scores(stack: Stack, participant_id: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(
        f"{stack.api}/v1/trials/{TRIAL}/participants/{participant_id}/scores",
        headers=stack.coordinator,
    )
    assert r.status_code == 200, r.text
    return {
        s["instrument"]: s
        for timepoint in r.json()["timepoints"]
        for s in timepoint["submissions"]
        if s["counts"]
    }


def test_a_participant_signs_in_with_a_code_fills_hads_and_the_diary_and_the_scores_are_theirs(
    stack: Stack, page: Page
) -> None:
    world = stack.world
    code = access_code(world.client, stack.coordinator, TRIAL, "P01")
    open_page(page, stack.front_end, stack)
    sign_in(page, "ABCD-EFGH-JKMN")  # a mistyped code: the API's problem+json, readably
    expect(page.get_by_role("alert")).to_contain_text("this code opens nothing")
    page.get_by_label("Your code").clear()
    sign_in(page, code)
    expect(page.locator("#participant-id")).to_have_text("P01")
    expect(page.locator("#trial-title")).to_have_text(f"Trial {TRIAL}")
    expect(page.locator("#due button[data-instrument=hads]")).to_be_visible()

    # sent with nothing answered: the FHIR route's OperationOutcome, readably
    page.locator("#due button[data-instrument=hads]").click()
    expect(page.locator("#formContainer")).to_have_attribute("data-loaded", "hads#week-1")
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_role("alert")).to_contain_text("answers: no item was answered")
    page.get_by_role("button", name="Back").click()

    fill_and_send(page, stack, "hads", HADS_ANSWERS)
    fill_and_send(page, stack, "diary", DIARY_ANSWERS)
    world.pump.drain()
    assert world.pump.stats.failures == 0

    # by hand from the keys: anxiety 3+2+3+1+2+1+0, depression 0+1+2+0+3+2+1;
    # self-criticism 7+6+5+8+6+4+3, self-compassion 2+3+1+2+4+3+10
    assert keyed(HADS_ANSWERS, HADS_KEY) == {"anxiety": 12, "depression": 9}
    assert keyed(DIARY_ANSWERS, DIARY_KEY) == {"self_criticism": 39, "self_compassion": 25}
    scored = scores(stack, "P01")
    assert set(scored) == {"hads", "diary"}
    assert {k: v["score"] for k, v in scored["hads"]["scores"].items()} == keyed(
        HADS_ANSWERS, HADS_KEY
    )
    assert {k: v["score"] for k, v in scored["diary"]["scores"].items()} == keyed(
        DIARY_ANSWERS, DIARY_KEY
    )
    assert scored["hads"]["completed_at"] == scored["diary"]["completed_at"]  # the page's clock
    (diary,) = [
        s for s in world.stores.submissions.list_for_trial(TRIAL) if s.instrument == "diary"
    ]
    assert dict(diary.notes or {}) == DIARY_NOTES  # the typed free text, stored as typed

    # a reload keeps the tab's session (no second code) and shows both slots done
    page.reload()
    expect(page.locator('#schedule tr[data-slot="hads#week-1"]')).to_have_attribute(
        "data-state", "done"
    )
    expect(page.locator('#schedule tr[data-slot="diary#week-1"]')).to_have_attribute(
        "data-state", "done"
    )
    expect(page.locator("#due button[data-instrument=hads]")).to_have_count(0)


def test_the_same_page_on_an_origin_that_is_not_allowed_is_refused_by_the_browser(
    stack: Stack, page: Page
) -> None:
    world = stack.world
    code = access_code(world.client, stack.coordinator, TRIAL, "P02")
    failed: list[Request] = []
    page.on("requestfailed", lambda request: failed.append(request))
    open_page(page, stack.elsewhere, stack)
    sign_in(page, code)
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("The study server could not be reached.")
    expect(problem).to_contain_text(f"does not accept requests from this page ({stack.elsewhere})")
    assert [r.url for r in failed] == [f"{stack.api}/v1/access/exchange"]
    expect(page.locator("#schedule-section")).to_be_hidden()

    # The preflight was refused, so the POST was never sent: the code still opens (a request
    # the browser sent and only hid the answer of would have used it up).
    r = httpx.post(f"{stack.api}/v1/access/exchange", json={"code": code})
    assert r.status_code == 201, r.text
    token = r.json()["participant_token"]
    # Even holding a token, a page on this origin cannot send answers.
    questionnaire = httpx.get(f"{stack.api}/v1/me/questionnaires/hads", headers=bearer(token))
    assert questionnaire.status_code == 200, questionnaire.text
    q = questionnaire.json()
    response = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": f"{q['url']}|{q['version']}",
        "authored": "2026-11-26T09:00:00Z",
        "item": [
            {"linkId": str(n), "answer": [{"valueInteger": score}]}
            for n, score in HADS_ANSWERS.items()
        ],
    }
    outcome = page.evaluate(
        """async ([url, token, body]) => {
             try {
               const r = await fetch(url, {method: "POST", body: JSON.stringify(body),
                 headers: {"Authorization": "Bearer " + token,
                           "Content-Type": "application/fhir+json"}});
               return "answered " + r.status;
             } catch (e) { return e.name; }
           }""",
        [f"{stack.api}/v1/trials/{TRIAL}/fhir/QuestionnaireResponse", token, response],
    )
    assert outcome == "TypeError"
    world.pump.drain()
    assert [
        s for s in world.stores.submissions.list_for_trial(TRIAL) if s.participant_id == "P02"
    ] == []
    assert scores(stack, "P02") == {}
