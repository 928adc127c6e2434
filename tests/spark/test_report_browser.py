"""report.html in a real browser: headless Chromium loads it with no request, no console error, every
thumbnail decoded. The screenshot is kept as out/report-screenshot.png (a CI artifact)."""

import os
import pathlib
import shutil

import pytest

from sparkprep.report.flags import report_config
from sparkprep.report.spark import run_report
from sparkprep.split.flags import split_config
from sparkprep.split.spark import run_split

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# `make test` installs Debian's chromium and sets this: there, a missing browser fails instead of skipping.
REQUIRED = os.environ.get("SPARKPREP_REQUIRE_BROWSER") == "1"
# As the probe of this machine starts it: no sandbox as root, and no background connections to Google.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = "playwright (requirements-dev.txt)" if sync_playwright is None else \
        "chromium (apt-get install chromium; `make test` does it)" if CHROMIUM is None else None
    if missing and REQUIRED:
        pytest.fail(f"browser test: {missing} is not installed")
    if missing:
        pytest.skip(f"browser test skipped: {missing} is not installed")
    return sync_playwright


def render(sync_playwright, page_path, screenshot):
    """Load the page; return (images, decoded images, console errors, requests other than the page itself)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed request {r.url}"))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri(), wait_until="load")
        sizes = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return len(sizes), sum(1 for w in sizes if w > 0), errors, [u for u in requests if u != page_path.as_uri()]


def test_report_pages_render_in_chromium_with_every_thumbnail_decoded(spark, sample_tree, tmp_path):
    sync_playwright = browser_or_skip()
    splits = tmp_path / "splits"
    run_split(spark, split_config(["--input", str(sample_tree), "--output", str(splits), "--seed", "3",
                                   "--max-quarantine-fraction", "1"]))
    run_report(spark, report_config(["--input", str(splits), "--output", str(tmp_path / "report")]))
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    for page, shot in ((splits / "_report.html", out / "report-screenshot.png"),
                       (tmp_path / "report" / "report.html", tmp_path / "report.png")):
        images, decoded, errors, requests = render(sync_playwright, page, shot)
        assert images > 20 and decoded == images, (page, images, decoded)
        assert errors == [] and requests == []
        assert shot.stat().st_size > 10_000
