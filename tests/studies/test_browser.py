"""The dashboard and the report in a real headless Chromium (Debian's package, driven by Playwright).

Screenshots land in tests/artifacts/ (gitignored). Without Chromium these tests fail: CI installs it.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qs, quote, urlsplit

import pytest

import optuna

from studies import figures
from studies.report import write_report
from studies.store import ResultStore
from tests.studies.factory import (
    SPREAD_TEXTS, add_preset, add_results, add_trial, create_study, sample_study, spec_for, spread_study,
)
from tests.studies.helpers import TINY_TFLITE
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
    add_results(url, study.trials[0], TINY_TFLITE.read_bytes())
    with ResultStore(url) as store:  # the agent's timing on the board
        store.save_measurement(study.trials[0]._trial_id, "http://pi4.local:8765", {"model": "Raspberry Pi 4"},
                               {"runs": 50}, {"p50_ms": 30.0, "peak_activation_bytes": 1_572_864})
    other = create_study(url, "other")
    for index in range(4):
        add_trial(other, index, seed=5)
    crowd_study(url)
    spread_study(url)
    return url


def crowd_study(url):
    """The issue's plot: presets on one spot, and one dominated trial far out on the latency axis."""
    study = create_study(url, "crowd")
    for index in range(8):
        add_trial(study, index, seed=3)
    for index, name in enumerate(("unet", "unet-int8", "group", "group-int8")):
        add_preset(study, name, spec_for(index), 0.74 + index * 1e-3, 18.0 + index * 0.05, 320.0 + index)
    study.add_trial(optuna.trial.create_trial(values=[0.58, 390.0, 800.0], user_attrs=dict(
        study.trials[0].user_attrs, dice=0.58, latency_ms=390.0)))
    return study


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
        assert page.locator("a[download]", has_text=".tflite").get_attribute("href") == "/artifact?study=demo&number=0"
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
        assert page.locator("table a.name").all_inner_texts() == ["spread", "crowd", "other", "demo"]
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


RECTS = """(selector) => [...document.querySelectorAll(selector)].map((node) => {
    const box = node.getBoundingClientRect();
    return [box.left, box.top, box.right, box.bottom];
})"""


def overlapping(boxes):
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1]


def test_crowded_presets_get_labels_apart_and_the_plot_opens_on_the_front(page, demo_url):
    with running_dashboard(demo_url) as served:
        open_ready(page, served.url + "?study=crowd")
        page.wait_for_function(f"() => {COUNT_POINTS} === 13")
        labels = page.evaluate(RECTS, "#fig-latency .annotation[data-index] .annotation-text-g")
        texts = page.eval_on_selector_all("#fig-latency .annotation-text-g", "(nodes) => nodes.map((n) => n.textContent)")
        assert {"unet", "unet-int8", "group", "group-int8"} <= {t.split(" · ")[0] for t in texts}
        assert any(t.endswith("knee #" + t.split("#")[-1]) and "knee #" in t for t in texts)
        label_boxes = page.evaluate(RECTS, "#fig-latency .annotation-text-g .bg")
        assert len(label_boxes) >= 5 and overlapping(label_boxes) == [], texts
        x_range = page.evaluate("() => document.getElementById('fig-latency')._fullLayout.xaxis.range")
        assert x_range[1] < 390.0  # the far trial does not set the axis
        page.wait_for_function("() => document.getElementById('fig-3d')._fullLayout.scene")
        scene_x = page.evaluate("() => document.getElementById('fig-3d')._fullLayout.scene.xaxis.range")
        assert scene_x[1] < 390.0  # nor the 3-D one
        screenshot(page, "dashboard-crowd-front.png")
        page.locator("#fig-latency .updatemenu-button", has_text="all trials").click()
        page.wait_for_function("() => document.getElementById('fig-latency')._fullLayout.xaxis.range[1] > 390")
        page.wait_for_timeout(300)
        screenshot(page, "dashboard-crowd-all.png")
        page.locator("#fig-latency .updatemenu-button", has_text="log axis").click()
        page.wait_for_function("() => document.getElementById('fig-latency')._fullLayout.xaxis.type === 'log'")
        assert labels and page.errors == []


def test_points_keep_their_category_colour_and_the_legends_read_right(page, demo_url):
    palette = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (*figures.KIND_COLORS.values(), figures.OTHER_COLOR)}
    with running_dashboard(demo_url) as served:
        open_ready(page, served.url + "?study=demo")
        page.wait_for_function(f"() => {COUNT_POINTS} === {COMPLETE}")
        styles = page.eval_on_selector_all(POINTS, """(nodes) => nodes.map((n) => {
            const s = getComputedStyle(n);
            return [s.opacity, s.fill, s.stroke];
        })""")
        assert all(float(opacity) == 1.0 for opacity, _, _ in styles)
        shown = set()
        for _, fill, stroke in styles:
            colour = stroke if fill == "none" else fill
            shown.add(tuple(int(v) for v in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]))
        assert shown <= palette, shown
        legend = page.eval_on_selector_all("#fig-3d .legendtext", "(nodes) => nodes.map((n) => n.textContent)")
        assert {"hand-designed presets", "infeasible (rejected)"} <= set(legend) and "presets / infeasible" not in legend
        overflow = page.evaluate("""() => [...document.querySelectorAll('.plot .js-plotly-plot, .plot.js-plotly-plot')].map((div) => {
            const box = div.getBoundingClientRect(), legend = div.querySelector('.legend');
            return [div.id, div._fullLayout.width - box.width, legend ? legend.getBoundingClientRect().right - box.right : 0];
        })""")
        assert len(overflow) == 4 and all(wide <= 2 and legend <= 1 for _, wide, legend in overflow), overflow  # none clipped
        ARTIFACTS.mkdir(exist_ok=True)  # an element screenshot waits for the box to stop resizing: it must
        page.locator("#fig-3d").screenshot(path=str(ARTIFACTS / "dashboard-3d.png"), timeout=10_000)
        assert page.errors == []


def test_study_page_says_what_to_export_and_marks_the_knee(page, demo_url):
    with running_dashboard(demo_url) as served:
        open_ready(page, served.url + "?study=demo")
        card = page.locator("#recommended .rec").first
        number = int(card.get_attribute("data-number"))
        assert card.locator(".badge.pick").first.inner_text() == "knee"
        commands = card.locator(".command code").all_inner_texts()
        storage = served.app.source
        assert commands[0] == f"search export --study demo --storage {storage} --trial {number} -o model.tflite"
        assert commands[1] == f"search export --study demo --storage {storage} --pick knee -o model.tflite"
        row = page.locator(f"#trials tbody tr[data-number='{number}']")
        assert "knee" in row.get_attribute("class") and row.locator(".badge.pick").first.inner_text() == "knee"
        page.locator("#recommended").scroll_into_view_if_needed()
        screenshot(page, "dashboard-recommended.png")
        assert page.errors == []


def test_trial_page_offers_the_sidecar_and_the_boards_peak_memory(page, demo_url):
    with running_dashboard(demo_url) as served:
        open_ready(page, served.url + "trial?study=demo&number=0")
        link = page.locator("a[download]", has_text="sidecar")
        assert link.get_attribute("href") == "/sidecar?study=demo&number=0"
        with page.expect_download() as download:
            link.click()
        assert download.value.suggested_filename == "demo-trial0.json"
        metrics = page.locator("table.kv").all_inner_texts()
        assert any("peak memory on http://pi4.local:8765" in text and "1.50 MiB" in text for text in metrics)
        assert "--trial 0 -o model.tflite" in page.locator("#export").inner_text()
        screenshot(page, "dashboard-trial-export.png")
        assert page.errors == []


def test_tables_show_dice_with_its_interval_test_dice_and_ties(page, demo_url, tmp_path):
    (dice, test, latency), (bare_dice, _, bare_latency) = SPREAD_TEXTS[0], SPREAD_TEXTS[1]
    with running_dashboard(demo_url) as served:
        open_ready(page, served.url + "?study=spread")
        assert {dice, test, latency} <= set(page.locator("#trials tbody tr[data-number='0'] td").all_inner_texts())
        bare = page.locator("#trials tbody tr[data-number='1'] td").all_inner_texts()
        assert {bare_dice, bare_latency} <= set(bare) and not any("±" in cell for cell in bare)
        ties = page.locator("#trials tbody tr[data-number='0'] .badge.tie")
        assert ties.inner_text() == "≈ #2" and "tie" in ties.get_attribute("title")
        page.locator("#trials th[data-key='dice']").click()  # sorts by the value, not the text
        assert page.eval_on_selector_all("#trials tbody tr", "(rows) => rows.map((r) => r.dataset.number)") == ["0", "2", "1"]
        assert dice in page.locator("#summary").inner_text() and dice in page.locator("#recommended").inner_text()
        screenshot(page, "dashboard-spread.png")
        assert page.errors == []
    report = write_report(demo_url, tmp_path / "report.html", study="spread")
    open_ready(page, report.resolve().as_uri())
    front = page.locator("#front tbody tr[data-number='0'] td").all_inner_texts()
    assert {dice, test, latency} <= set(front) and "≈ #2" in front[0]
    assert page.errors == []
