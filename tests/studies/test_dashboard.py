"""The dashboard over HTTP, against a real SQLite study served on a free loopback port."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import quote

import optuna
import pytest

from studies import export, front, pages, pareto
from studies.store import ResultStore
from tests.conftest import run_cli
from tests.studies.factory import SPREAD_TEXTS, add_results, add_trial, create_study, sample_study, spread_study
from tests.studies.helpers import TINY_TFLITE
from tests.studies.served import fetch, running_dashboard

HOSTILE = "<script>alert(1)</script>"
TFLITE = TINY_TFLITE.read_bytes()  # a real model: the sidecar reads its tensors with LiteRT
BOARD = {"device": "http://pi4.local:8765", "peak_activation_bytes": 1_572_864}


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """``(url, sha256 of trial 0's artifact)``: study ``demo`` with results for trial 0, and a hostile name."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'studies.db'}"
    demo = sample_study(url, "demo", complete=10)
    digest = add_results(url, demo.trials[0], TFLITE)
    with ResultStore(url) as store:  # a later timing on the board, by the agent
        store.save_measurement(demo.trials[0]._trial_id, BOARD["device"], {"model": "Raspberry Pi 4"}, {"runs": 50},
                               {"p50_ms": 30.0, "peak_activation_bytes": BOARD["peak_activation_bytes"]})
    hostile = create_study(url, HOSTILE)
    for index in range(3):
        add_trial(hostile, index, seed=2, preset=HOSTILE if index == 0 else None)
    return url, digest


@pytest.fixture(scope="module")
def server(database):
    with running_dashboard(database[0], study="demo", refresh_seconds=0.5) as served:
        yield served


def get(server, path, **options):
    return fetch(server.url.rstrip("/") + path, **options)


def trial_counts(url):
    return {s.study_name: len(s.trials) for s in (optuna.load_study(study_name=n, storage=url)
                                                   for n in optuna.get_all_study_names(url))}


def test_binds_loopback_by_default(database):
    with running_dashboard(database[0]) as served:
        assert served.server_address[0] == "127.0.0.1" and served.loopback_only
    parser_help = run_cli("dashboard", "--help").stdout
    assert "127.0.0.1" in parser_help


def test_a_port_in_use_is_one_line_and_exit_status_2(database, server, tmp_path):
    port = server.server_address[1]
    result = run_cli("dashboard", "--storage", database[0], "--port", str(port), cwd=tmp_path, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0] and "pass another --port" in lines[0]


def test_study_page_serves_plotly_locally(server):
    status, headers, body = get(server, "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert scripts == ["/static/plotly.min.js", "/static/app.js"]
    assert "cdn" not in page.lower() and "https://" not in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, headers, body = get(server, "/static/plotly.min.js")
    assert status == 200 and body.decode() == pages.plotly_js()


def test_study_json_has_figures_rows_and_a_version(server):
    status, _, body = get(server, "/api/study?study=demo")
    payload = json.loads(body)
    assert status == 200 and set(payload["figures"]) == {"latency", "size", "3d", "hypervolume"}
    points = [n for t in payload["figures"]["latency"]["data"] if (t.get("meta") or {}).get("role") == "trials"
              for n in t["customdata"]]
    assert len(points) == 10 and len(payload["rows"]) == 12  # 10 complete + a FAIL and a PRUNED
    assert [c[0] for c in payload["columns"]][:5] == ["number", "state", "dice", "float_dice", "latency_ms"]
    row = payload["rows"][0]
    assert row["stages"].count("|") == 2 and row["quant"] and row["params"] and row["macs"] and row["seconds"] == 15.5
    _, _, again = get(server, f"/api/study?study=demo&version={quote(payload['version'])}")
    assert json.loads(again) == {"version": payload["version"], "unchanged": True}
    _, _, by_quant = get(server, "/api/study?study=demo&color=quant")
    names = {t["name"] for t in json.loads(by_quant)["figures"]["latency"]["data"]}
    assert {"float32", "int8"} <= names


def test_trial_page_shows_spec_metrics_latency_previews_and_download(server, database):
    status, _, body = get(server, "/trial?study=demo&number=0")
    page = body.decode()
    assert status == 200
    for text in ("encoder[0]", "bottleneck", "decoder[0]", "Dice (TFLite, after PTQ)", "latency p90 (ms)",
                 "x86_64", "Download .tflite", 'id="fig-latency-hist"', 'id="fig-dice-history"'):
        assert text in page, text
    assert page.count('src="/preview?') == 6
    status, headers, data = get(server, "/artifact?study=demo&number=0")
    assert status == 200 and hashlib.sha256(data).hexdigest() == database[1]
    assert "attachment" in headers["Content-Disposition"] and headers["Content-Disposition"].endswith('.tflite"')
    status, headers, image = get(server, "/preview?study=demo&number=0&index=1&image=prediction")
    assert status == 200 and headers["Content-Type"] == "image/png" and image.startswith(b"\x89PNG")
    detail = json.loads(get(server, "/api/trial?study=demo&number=0")[2])
    assert len(detail["latency_samples"]) == 40 and detail["previews"] == 2 and detail["artifact"]["sha256"] == database[1]


def test_study_json_recommends_trials_with_their_export_commands(server, database):
    payload = json.loads(get(server, "/api/study?study=demo")[2])
    study = optuna.load_study(study_name="demo", storage=database[0])
    points = front.study_points(study)
    expected: dict[int, list[str]] = {}
    for rule in ("knee", "max-dice", "min-latency"):
        expected.setdefault(pareto.pick(points, rule).number, []).append(rule)
    recommended = payload["recommended"]
    assert {item["number"]: item["rules"] for item in recommended} == expected
    knee = pareto.pick(points, "knee").number
    first = recommended[0]
    assert first["labels"][0] == "knee" and first["number"] == knee
    assert first["command"] == f"search export --study demo --storage {database[0]} --trial {knee} -o model.tflite"
    assert first["pick_commands"][0] == f"search export --study demo --storage {database[0]} --pick knee -o model.tflite"
    marked = {row["number"]: row["picks"] for row in payload["rows"] if row["picks"]}
    assert marked[knee][0] == "knee" and set(marked) == set(expected)


def test_export_command_quotes_names_for_the_shell():
    from studies.views import export_command

    assert export_command("my study", "sqlite:///a b.db", pick="max-dice") == (
        "search export --study 'my study' --storage 'sqlite:///a b.db' --pick max-dice -o model.tflite")


def test_trial_page_offers_the_sidecar_export_writes_and_the_command(server, database, tmp_path):
    page = get(server, "/trial?study=demo&number=0")[2].decode()
    assert 'href="/sidecar?study=demo&amp;number=0"' in page and "Download sidecar .json" in page
    assert f"search export --study demo --storage {database[0]} --trial 0 -o model.tflite" in page
    status, headers, body = get(server, "/sidecar?study=demo&number=0")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="demo-trial0.json"'
    served = json.loads(body)
    study = optuna.load_study(study_name="demo", storage=database[0])
    with ResultStore(database[0], create=False) as store:
        written = export.export(study, store, tmp_path / "model.tflite", trial=0)
    expected = json.loads(written.sidecar.read_text())
    assert served["sha256"] == database[1] == expected["sha256"]
    assert {k: v for k, v in served.items() if k != "exported"} == {k: v for k, v in expected.items() if k != "exported"}
    assert get(server, "/sidecar?study=demo&number=1")[0] == 404  # no stored model


def test_trial_page_shows_the_boards_peak_memory(server):
    page = get(server, "/trial?study=demo&number=0")[2].decode()
    assert f"peak memory on {BOARD['device']}" in page and "1.50 MiB (activations, 1,572,864 bytes)" in page
    other = get(server, "/trial?study=demo&number=1")[2].decode()  # no measurement stored: the trial's own figure
    assert "peak memory on local-cpu" in other and "2,000,000 bytes" in other


def test_knee_trial_page_says_so_with_the_pick_command(server, database):
    study = optuna.load_study(study_name="demo", storage=database[0])
    knee = pareto.pick(front.study_points(study), "knee").number
    page = get(server, f"/trial?study=demo&number={knee}")[2].decode()
    assert '<span class="badge pick">knee</span>' in page
    assert f"--storage {database[0]} --pick knee -o model.tflite" in page


def test_trial_without_results_says_so(server):
    page = get(server, "/trial?study=demo&number=1")[2].decode()
    assert "no .tflite stored" in page and "no preview images stored" in page and "no latency samples" in page


@pytest.mark.parametrize("path, status", [
    ("/nowhere", 404), ("/trial?study=demo&number=99", 404), ("/trial?study=nope&number=0", 404),
    ("/trial?study=demo&number=x", 400), ("/trial?study=demo", 400), ("/api/study?study=demo&color=red", 400),
    ("/artifact?study=demo&number=1", 404), ("/preview?study=demo&number=0&index=5&image=input", 404),
    ("/preview?study=demo&number=0&index=0&image=../../etc/passwd", 400), ("/api/study?study=nope", 404),
])
def test_bad_requests_get_clear_errors(server, path, status):
    got, headers, body = get(server, path)
    assert got == status
    if path.startswith("/api/"):
        assert json.loads(body)["error"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_only_get_and_head_are_allowed(server, database, method):
    before = trial_counts(database[0])
    for path in ("/", "/api/study?study=demo", "/artifact?study=demo&number=0"):
        status, headers, _ = get(server, path, method=method, data=b"state=COMPLETE" if method != "OPTIONS" else None)
        assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert trial_counts(database[0]) == before


def test_head_sends_headers_only(server):
    status, headers, body = get(server, "/", method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) > 1000 and body == b""


def test_foreign_host_header_is_refused(server):
    assert get(server, "/", headers={"Host": "evil.example:8080"})[0] == 403
    assert get(server, "/", headers={"Host": "localhost:8080"})[0] == 200


def test_names_are_escaped_everywhere(server):
    for path in (f"/?study={quote(HOSTILE)}", "/studies", f"/trial?study={quote(HOSTILE)}&number=0",
                 f"/compare?a=demo&b={quote(HOSTILE)}", f"/trial?study={quote(HOSTILE)}&number=7"):
        page = get(server, path)[2].decode()
        assert HOSTILE not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "\\u003cscript\\u003e" in page, path


def test_compare_json_has_both_fronts(server):
    payload = json.loads(get(server, f"/api/compare?a=demo&b={quote(HOSTILE)}")[2])
    fronts = [t["name"] for t in payload["figures"]["latency"]["data"] if (t.get("meta") or {}).get("role") == "front"]
    assert fronts == ["demo: front", "&lt;script&gt;alert(1)&lt;/script&gt;: front"]


def page_data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.S).group(1))


def test_every_dice_shown_carries_its_interval_where_stored(tmp_path):
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    spread_study(url)
    add_trial(create_study(url, "other"), 0)
    (dice, test, latency), (bare_dice, _, bare_latency) = SPREAD_TEXTS[0], SPREAD_TEXTS[1]
    with running_dashboard(url, study="spread") as served:
        data = page_data(get(served, "/?study=spread")[2].decode())
        rows = {row["number"]: row for row in data["rows"]}
        assert rows[0]["texts"] == {"dice": dice, "test_dice": test, "latency_ms": latency}
        assert rows[1]["texts"] == {"dice": bare_dice, "latency_ms": bare_latency}
        assert rows[0]["ties"] == [2] and rows[2]["ties"] == [0] and rows[1]["ties"] == []
        columns = {key: (header, kind) for key, header, kind in data["columns"]}
        assert columns["dice"] == ("Dice ± 95%", "spread") and columns["test_dice"] == ("test Dice ± 95%", "spread")
        assert data["summary"]["best_dice_text"] == dice and data["summary"]["min_latency_text"] == bare_latency
        assert {item["number"]: item["texts"]["dice"] for item in data["recommended"]}[0] == dice
        hovers = " ".join(text for t in data["figures"]["latency"]["data"] for text in t.get("hovertext") or [])
        assert f"Dice {dice} · test {test}" in hovers
        trial = get(served, "/trial?study=spread&number=0")[2].decode()
        for label, text in (("Dice (TFLite, after PTQ) ± 95% over images", dice),
                            ("test Dice (held out) ± 95% over images", test), ("latency p50 (ms) ± standard error", latency)):
            assert f"<th>{label}</th><td>{text}</td>" in trial, label
        bare = get(served, "/trial?study=spread&number=1")[2].decode()
        assert f"<td>{bare_dice}</td>" in bare and f"<td>{bare_latency}</td>" in bare and not re.findall("<td>[^<]*±", bare)
        compared = json.loads(get(served, "/api/compare?a=spread&b=other")[2])
        hovers = " ".join(text for t in compared["figures"]["latency"]["data"] for text in t.get("hovertext") or [])
        assert f"Dice {dice}" in hovers


def test_new_trials_change_the_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    study = create_study(url, "live")
    add_trial(study, 0)
    with running_dashboard(url) as served:
        first = json.loads(get(served, "/api/study?study=live")[2])
        add_trial(study, 1)
        second = json.loads(get(served, f"/api/study?study=live&version={quote(first['version'])}")[2])
    assert second["version"] != first["version"] and len(second["rows"]) == 2


def test_cli_reports_missing_database_and_study(tmp_path, database):
    missing = run_cli("dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}", "--port", "0")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    unknown = run_cli("dashboard", "--storage", database[0], "--study", "nope", "--port", "0")
    assert unknown.returncode == 2 and "available: demo" in unknown.stderr and "Traceback" not in unknown.stderr


def test_cli_serves_until_stopped(database):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    process = subprocess.Popen(
        [sys.executable, "-m", "search", "dashboard", "--storage", database[0], "--port", "0"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True,
        # Ctrl+C as in a terminal, also when the tests run in a background job (where SIGINT is ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = process.stderr.readline()
        address = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert fetch(address + "api/studies")[0] == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0
