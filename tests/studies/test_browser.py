"""The dashboard and the report in a real headless Chromium (Debian's package, driven by Playwright).

Screenshots land in tests/artifacts/ (gitignored). Without Chromium these tests fail: CI installs it.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from studies.report import write_report
from tests.studies.factory import add_results, add_trial, create_study, sample_study
from tests.studies.served import ARTIFACTS, chromium_browser, running_dashboard

pytestmark = pytest.mark.browser

COMPLETE = 10
POINTS = "#fig-latency .scatterlayer .trace .point"
COUNT_POINTS = f"document.querySelectorAll('{POINTS}').length"


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'studies.db'}"
    study = sample_study(url, "demo", complete=COMPLETE)
    add_results(url, study.trials[0], b"TFL3" + bytes(2048))
    other = create_study(url, "other")
    for index in range(4):
        add_trial(other, index, seed=5)
    return url


@pytest.fixture
def page(browser):
    """A fresh page that records console errors, page errors and every request."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.errors = []
    opened.requests = []
    opened.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
    opened.on("request", lambda request: opened.requests.append(request.url))
    yield opened
    context.close()


def open_ready(page, address):
    page.goto(address)
    page.wait_for_selector("body[data-ready]")


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def isolated_point(page):
    """``(element, trial number)`` of a point with no other point within 16 px (a click cannot miss)."""
    handles = page.query_selector_all(POINTS)
    boxes = [handle.bounding_box() for handle in handles]
    centres = [(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2) for b in boxes]
    for index, (x, y) in enumerate(centres):
        if all(math.dist((x, y), other) > 16 for j, other in enumerate(centres) if j != index):
            number = page.evaluate(
                "(el) => { const cd = el.closest('g.trace').__data__; return cd[0].trace.customdata[el.__data__.i]; }",
                handles[index],
            )
            return (x, y), number
    raise AssertionError("no isolated point to click")


def test_study_page_loads_plots_every_trial_and_opens_a_trial(page, demo_url):
    with running_dashboard(demo_url, refresh_seconds=1.0) as served:
        open_ready(page, served.url + "?study=demo")
        page.wait_for_function(f"() => {COUNT_POINTS} === {COMPLETE}")
        assert page.locator("#trials tbody tr").count() == COMPLETE + 2
        assert page.locator("#summary .card").count() >= 6
        page.wait_for_timeout(500)
        screenshot(page, "dashboard-study.png")
        (x, y), number = isolated_point(page)
        with page.expect_navigation():
            page.mouse.move(x, y)
            page.mouse.click(x, y)
        query = parse_qs(urlsplit(page.url).query)
        assert urlsplit(page.url).path == "/trial" and query == {"study": ["demo"], "number": [str(number)]}
        page.wait_for_selector("body[data-ready]")
        assert page.locator("h1").inner_text().startswith(f"Trial #{number}")
        assert page.errors == []
        assert all(u.startswith(served.url) or u.startswith("data:") for u in page.requests)


def test_trial_page_shows_previews_and_latency_histogram(page, demo_url):
    with running_dashboard(demo_url) as served:
        open_ready(page, served.url + "trial?study=demo&number=0")
        page.wait_for_selector("#fig-latency-hist .barlayer")
        loaded = page.evaluate("[...document.querySelectorAll('.preview img')].map(i => i.complete && i.naturalWidth)")
        assert loaded == [32] * 6
        assert page.locator("a[download]").get_attribute("href") == "/artifact?study=demo&number=0"
        screenshot(page, "dashboard-trial.png")
        assert page.errors == []


def test_colour_selector_redraws_without_reload(page, demo_url):
    with running_dashboard(demo_url) as served:
        open_ready(page, served.url + "?study=demo")
        page.evaluate("window.__stayed = true")
        page.select_option("#color-select", "quant")
        page.wait_for_function("() => document.getElementById('fig-latency').data.some(t => t.name === 'int8')")
        assert page.evaluate("window.__stayed") is True
        assert page.evaluate(f"() => {COUNT_POINTS}") == COMPLETE
        assert page.errors == []


def test_new_trials_appear_without_reload(page, tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    study = create_study(url, "live")
    for index in range(3):
        add_trial(study, index)
    with running_dashboard(url, refresh_seconds=0.3) as served:
        open_ready(page, served.url + "?study=live")
        page.wait_for_function(f"() => {COUNT_POINTS} === 3")
        page.evaluate("window.__stayed = true")
        add_trial(study, 3)
        add_trial(study, 4, preset="hand-made")
        page.wait_for_function(f"() => {COUNT_POINTS} === 5", timeout=20_000)
        page.wait_for_function("() => document.querySelectorAll('#trials tbody tr').length === 5")
        assert page.evaluate("window.__stayed") is True
        assert "hand-made" in page.locator("#trials").inner_text()
        assert page.errors == []


def test_hostile_study_name_shows_as_text(page, tmp_path):
    name = "<script>alert(1)</script>"
    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    add_trial(create_study(url, name), 0, preset="<img src=x onerror=alert(2)>")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    with running_dashboard(url) as served:
        open_ready(page, served.url + f"?study={quote(name)}")
        assert page.locator("h1 .name").inner_text() == name
        assert name in page.locator("#fig-latency .gtitle").text_content()
        assert page.locator("#trials").inner_text().count("<img src=x onerror=alert(2)>") == 1
    assert dialogs == [] and page.errors == []


def test_compare_and_studies_pages(page, demo_url):
    with running_dashboard(demo_url) as served:
        open_ready(page, served.url + "compare?a=demo&b=other")
        page.wait_for_function(f"() => {COUNT_POINTS} === {COMPLETE - 1 + 4}")  # feasible trials of both
        fronts = page.evaluate("() => document.getElementById('fig-latency').data.filter(t => t.meta && t.meta.role === 'front').length")
        assert fronts == 2
        screenshot(page, "dashboard-compare.png")
        open_ready(page, served.url + "studies")
        assert page.locator("table a.name").all_inner_texts() == ["other", "demo"]
        assert page.errors == []


def test_report_opens_offline_without_any_request(page, demo_url, tmp_path):
    report = write_report(demo_url, tmp_path / "report.html", study="demo")
    address = report.resolve().as_uri()
    open_ready(page, address)
    page.wait_for_function(f"() => {COUNT_POINTS} === {COMPLETE}")
    page.wait_for_selector("#fig-3d .gl-container canvas", state="attached")
    assert page.locator("#front tbody tr").count() >= 3
    page.select_option("#color-select", "quant")
    page.wait_for_function("() => document.getElementById('fig-latency').data.some(t => t.name === 'int8')")
    screenshot(page, "report.png")
    assert [u for u in page.requests if not u.startswith(("data:", "blob:"))] == [address]
    assert page.errors == []
