"""report.html in a real browser (headless Chromium): it loads without errors or fetches, every plot
decodes, and it reads on a phone (no horizontal overflow at 390 px, every row's breakdown opened) as well
as on a desktop and on paper.

Needs Debian's Chromium (``apt-get install chromium``); skipped without it, unless
``ROBUSTGATE_REQUIRE_BROWSER=1`` (CI) makes that a failure. Set ``ROBUSTGATE_SCREENSHOTS_DIR`` to keep
the screenshots somewhere to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]
PLOTTED = """\
  - attack: {kind: fgsm, eps: [0, 2/255, 8/255], on: handwritten, samples: 32, min: 0.0}
  - corruptions: {on: handwritten, suite: [contrast, gaussian_noise], severities: [1, 5], samples: 40, min_accuracy: 0.0}
  - latency: {p90_ms: 1000, min_queries: 10, min_seconds: 0.0, warmup: 1, variants: [int8]}
"""
# elements wider than the viewport, wherever they are: a table cut off inside a scrolling box counts too
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > innerWidth + 1)
    .map(e => e.tagName + (e.className ? '.' + e.className : '') + ' ' + (e.textContent || '').slice(0, 40))"""


def _require_browser() -> Any:
    """playwright's sync API, or a skip saying how to get Chromium (a failure where CI requires the browser)."""
    required = os.environ.get("ROBUSTGATE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "playwright is not installed: install robustgate's test extras (pip install -e '.[test]')"
        pytest.fail(why) if required else pytest.skip(why)
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is absent: install Debian's Chromium with `apt-get install chromium` to run the browser test"
        pytest.fail(why) if required else pytest.skip(why)
    return sync_playwright


def _keep(shots: list[Path]) -> None:
    folder = os.environ.get("ROBUSTGATE_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(folder) / shot.name)


def test_the_report_loads_cleanly_and_reads_on_a_phone_and_a_desktop(tiny_project: pytest.Pytester, write_spec,
                                                                      tmp_path: Path) -> None:
    sync_playwright = _require_browser()
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(spec + PLOTTED, "tiny.yaml")
    tiny_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=8)
    report = tiny_project.path / "reports" / "report.html"
    page_text = report.read_text()
    assert page_text.count("data-plot='corruptions'") == 2 and "data-plot='attack'" in page_text
    assert "data-plot='latency'" in page_text and "data-plot='compression'" in page_text

    shots, console, requests = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            for width, media in ((390, "screen"), (1280, "screen"), (760, "print")):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
                page.on("pageerror", lambda error: console.append(f"error: uncaught {error}"))
                page.on("request", lambda request: requests.append(request.url))
                page.emulate_media(media=media)
                page.goto(report.as_uri(), wait_until="load")
                images = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
                assert len(images) >= 5 and all(images), f"{images.count(False)} of {len(images)} plots did not decode"
                if media == "screen":  # every row opened onto its gates, intervals and attack legs
                    assert page.evaluate("document.querySelectorAll('details').length") == 8
                    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                    assert page.evaluate("[...document.querySelectorAll('.breakdown')].every(b => b.offsetHeight > 0)")
                if width == 390:
                    scroll = page.evaluate("document.scrollingElement.scrollWidth")
                    assert scroll <= width + 1, f"the page scrolls sideways at {width} px: {scroll} px wide"
                assert page.evaluate(OVERFLOWING) == [], f"wider than {width} px ({media})"
                shot = tmp_path / f"report-{width}-{media}.png"
                page.screenshot(path=str(shot), full_page=True)
                shots.append(shot)
                page.close()
        finally:
            browser.close()
    _keep(shots)
    assert [line for line in console if line.startswith(("error", "warning"))] == []
    assert {url for url in requests if not url.startswith("data:")} == {report.as_uri()}, "fetched something"
