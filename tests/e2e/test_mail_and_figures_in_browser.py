"""The e-mails and a figure as a person sees them: headless Chromium at desktop and phone width.

The artefacts come from the real pipeline on moto (API -> stream -> scoring and the safety
alert -> published report and figure -> weekly summary), not from hand-made HTML. Each is
opened in Debian's Chromium (installed by `make test`'s browser step; if it cannot start,
these tests fail rather than skip) at 1280 px and 390 px, and checked for what a reader
would notice: nothing wider than the screen, every figure drawn, no text below 12 px, the
bars of the weekly mail visible. Screenshots are kept in ``build/screenshots/``.
"""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from playwright.sync_api import Browser, sync_playwright

from conftest import CHROMIUM, CHROMIUM_ARGS, REGION, make_trial, moto_world, submission
from services.mail_render import render_weekly_summary

REPO = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "screenshots"
WIDTHS = (1280, 390)
MIN_FONT_PX = 12
TRIAL = "cmt-pilot"
# the longest pseudonymous code the contract allows: one unbreakable 64-character word
LONG_CODE = "P-" + "x" * 62


def hads(*, anxious: bool, item_1: int = 0) -> dict[str, int]:
    return {**{str(i): (2 if anxious else 0) for i in range(1, 15)}, "1": item_1}


def fscrs(level: int, item_9: int = 0) -> dict[str, int]:
    return {**{str(i): level for i in range(1, 23)}, "9": item_9}


@dataclass(frozen=True)
class Artefacts:
    pages: dict[str, pathlib.Path]  # name -> an HTML file to open


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Artefacts:
    out = tmp_path_factory.mktemp("mail-and-figures")
    with moto_world() as world:
        client, container, clock = world.client, world.container, world.clock
        codes = ("P01", "P02", "P03", "P04", "P05", "P06", "P07", LONG_CODE)
        keys = make_trial(client, container, trial_id=TRIAL, participants=codes)

        def post(body: dict[str, Any]) -> None:
            r = client.post(f"/v1/trials/{TRIAL}/submissions", headers=keys.submitter, json=body)
            assert r.status_code == 201, r.text

        for n, pid in enumerate(codes[:7]):
            post(submission(pid, "hads", "week-1", hads(anxious=True, item_1=n % 3)))
            post(submission(pid, "fscrs", "week-1", fscrs(3)))
        r = client.patch(
            f"/v1/trials/{TRIAL}/participants/P07",
            headers=keys.coordinator,
            json={"status": "withdrawn"},
        )
        assert r.status_code == 200, r.text
        clock.advance(timedelta(days=77))  # week-12
        for n, pid in enumerate(codes[:6]):
            # P01, P03 and P05 end with identical scores: the figure must show them as ×3
            post(submission(pid, "hads", "week-12", hads(anxious=False, item_1=(n % 2) * 2)))
            post(submission(pid, "fscrs", "week-12", fscrs(1, item_9=3 if pid == "P02" else 0)))
        world.pump.drain()
        assert world.pump.stats.failures == 0
        r = client.post(f"/v1/trials/{TRIAL}/reports/pre-post", headers=keys.coordinator)
        assert r.status_code == 200, r.text
        figure = (
            world.aws["s3"]
            .get_object(
                Bucket=container.settings.reports_bucket,
                Key=f"reports/{TRIAL}/pre-post/figures/fscrs.svg",
            )["Body"]
            .read()
        )
        clock.advance(timedelta(days=3))

        summary = container.weekly.build(container.trials.get(TRIAL), clock())
        weekly = render_weekly_summary(summary)
        sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        alerts = [m for m in sent if m.subject.startswith("Safety alert")]
    assert len(alerts) == 1
    assert summary.alerts
    assert summary.due
    assert summary.results
    assert summary.results.lines

    (out / "weekly.html").write_text(weekly.html, encoding="utf-8")
    (out / "alert.html").write_text(alerts[0].body, encoding="utf-8")
    (out / "fscrs.svg").write_bytes(figure)
    # and inline, so its elements can be measured in the page
    (out / "figure-inline.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>FSCRS figure</title></head><body style='margin:0'>"
        + figure.decode()
        + "</body></html>",
        encoding="utf-8",
    )
    # the figure as a report page shows it: an <img> in an otherwise empty page
    (out / "figure.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>FSCRS figure</title></head><body style='margin:0'>"
        '<img src="fscrs.svg" alt="FSCRS pre/post figure"></body></html>',
        encoding="utf-8",
    )
    return Artefacts(
        pages={
            "weekly": out / "weekly.html",
            "alert": out / "alert.html",
            "figure": out / "figure.html",
            "figure-inline": out / "figure-inline.html",
        }
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # no skip when Chromium is missing: `make test` installs it, and a browser that does not
    # start is a failure to see
    assert pathlib.Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run `make browser` (as root)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# What a reader would notice, measured in one pass per page: the page's width, text drawn
# below the minimum size (an SVG's text scaled with the SVG: its font size times the screen
# transform), the images, the weekly mail's bars and sections, the figure's panels.
MEASURE = """
(minimum) => {
  const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || !node.textContent.trim() || el.closest("title")) continue;
    if (el.closest('[style*="display:none"]')) continue;  // the mail's hidden preview line
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.getBoundingClientRect().width === 0) continue;
    let size = parseFloat(style.fontSize);
    if (el instanceof SVGElement) {  // the transform's scale, rotated text included
      const m = el.getScreenCTM();
      size *= Math.hypot(m.a, m.b);
    }
    if (size < minimum) small.push([node.textContent.trim().slice(0, 40), size]);
  }
  const box = (el) => el.getBoundingClientRect();
  return {
    scrollWidth: document.scrollingElement.scrollWidth,
    small,
    images: [...document.images].map(i => ({
      complete: i.complete, natural: [i.naturalWidth, i.naturalHeight], shown: box(i).width,
    })),
    bars: [...document.querySelectorAll("td[bgcolor]")].map(td => ({
      declared: parseFloat(td.getAttribute("width")),
      drawn: box(td).width / box(td.closest("table")).width * 100,
      height: box(td).height,
    })),
    headings: [...document.querySelectorAll("h2")].map(h => [h.textContent, box(h).left]),
    svg: [...document.querySelectorAll("svg")].map(svg => [box(svg).width, box(svg).height]),
    panels: [...document.querySelectorAll("g.panel")].map(g => ({
      subscale: g.dataset.subscale, width: box(g).width, height: box(g).height,
      lines: g.querySelectorAll("line.pair").length,
    })),
    counts: [...document.querySelectorAll("text.pair-count")].map(t => t.textContent),
    text: document.body.innerText,
  };
}
"""
PAGES = ("weekly", "alert", "figure", "figure-inline")


@pytest.fixture(scope="module")
def seen(browser: Browser, artefacts: Artefacts) -> dict[tuple[str, int], dict[str, Any]]:
    """Each page at each width: opened once, screenshot kept, measured."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    measured = {}
    for name in PAGES:
        for width in WIDTHS:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(artefacts.pages[name].as_uri(), wait_until="load")
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
            measured[(name, width)] = page.evaluate(MEASURE, MIN_FONT_PX)
            page.close()
    return measured


EVERY_PAGE = pytest.mark.parametrize(("name", "width"), [(n, w) for n in PAGES for w in WIDTHS])


@EVERY_PAGE
def test_nothing_is_wider_than_the_screen(seen, name: str, width: int) -> None:
    assert seen[(name, width)]["scrollWidth"] <= width


@EVERY_PAGE
def test_no_text_is_drawn_smaller_than_12_px(seen, name: str, width: int) -> None:
    assert seen[(name, width)]["small"] == []


def test_the_screenshots_are_kept_as_build_artefacts(seen) -> None:
    kept = sorted(p.name for p in SCREENSHOTS.glob("*.png"))

    assert kept == sorted(f"{n}-{w}.png" for n in PAGES for w in WIDTHS)
    assert all((SCREENSHOTS / k).stat().st_size > 1000 for k in kept)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_figure_loads_as_an_image_at_full_size(seen, width: int) -> None:
    (image,) = seen[("figure", width)]["images"]

    assert image["complete"]
    assert image["natural"][0] > 0
    assert image["natural"][1] > 0
    assert image["shown"] == 380  # drawn 1:1, not shrunk: its 12 px text stays 12 px


@pytest.mark.parametrize("width", WIDTHS)
def test_the_figure_draws_a_panel_per_subscale_with_its_lines(seen, width: int) -> None:
    page = seen[("figure-inline", width)]

    ((svg_width, svg_height),) = page["svg"]
    assert svg_width == 380
    assert svg_height > 0
    assert [p["subscale"] for p in page["panels"]] == [
        "inadequate_self",
        "hated_self",
        "reassured_self",
    ]
    assert all(p["width"] > 0 and p["height"] > 0 and p["lines"] > 0 for p in page["panels"])
    assert page["counts"]  # identical pairs are labelled, not hidden
    assert "completers only" in page["text"]
    assert "lower is better" in page["text"]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_weekly_mails_bars_are_drawn_to_scale(seen, width: int) -> None:
    bars = seen[("weekly", width)]["bars"]

    assert len(bars) >= 6  # enrolment, completion, and two per result at least
    for bar in bars:
        assert bar["drawn"] == pytest.approx(bar["declared"], abs=2)
        assert bar["height"] >= 10


def test_the_weekly_mail_on_a_phone_is_one_column_with_the_alerts_first(seen) -> None:
    page = seen[("weekly", 390)]

    assert page["headings"][0][0] == "Safety alerts this week (1)"
    assert len({round(left) for _, left in page["headings"]}) == 1  # one column
    assert LONG_CODE in page["text"]  # the longest code wraps instead of overflowing


def test_the_safety_alert_reads_on_a_phone_without_the_answers(seen) -> None:
    text = seen[("alert", 390)]["text"]

    assert "Please follow the trial's safety protocol for this participant now." in text
    assert "P02" in text
    assert "FSCRS item 9 answered at or above 3" in text
