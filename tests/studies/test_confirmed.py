"""The confirmed front (studies/confirmed.py), its claims in the store, its figure, status table and export pick."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import optuna
import pytest

from studies.confirmed import confirmed, confirmed_front, format_confirmed, load_confirmed, reference, spearman
from studies.store import ResultStore
from tests.conftest import run_cli
from tests.studies.helpers import TINY_TFLITE

OTHER_TFLITE = Path(__file__).parents[1] / "evaluators" / "data" / "xnnpack_refuses_int8.tflite"
# subject -> [(seed, validation Dice, test Dice, latency ms)]; search-time study_db: #0 0.90/100 ms, #1 0.85/20 ms, #2 0.50/10 ms
RUNS = {
    "trial:0": [(0, 0.80, 0.70, 100.0), (1, 0.82, 0.72, 102.0)],
    "trial:1": [(0, 0.84, 0.86, 20.0), (1, 0.86, 0.88, 22.0), (2, 0.85, 0.87, 21.0)],
    "trial:2": [(0, 0.55, 0.50, 10.0), (1, 0.57, 0.52, 10.0)],
    "preset:unet": [(0, 0.90, 0.91, 30.0), (1, 0.88, 0.89, 30.0)],
}


def save_runs(url: str, study_name: str) -> None:
    with ResultStore(url) as store:
        for subject, runs in RUNS.items():
            for seed, dice, test, latency in runs:
                model = OTHER_TFLITE.read_bytes() if (subject, seed) == ("trial:1", 1) else TINY_TFLITE.read_bytes()
                figures = {"dice": dice, "test_dice": test, "latency_ms": latency, "size_kb": 200.0, "summary": subject,
                           "quant": "int8", "spec": None}
                store.save_confirmation(study_name, subject, 12, seed, figures, model)


@pytest.fixture
def confirmed_db(study_db):
    url, study = study_db
    save_runs(url, study.study_name)
    return url, study


def test_means_spreads_best_seed_and_front(confirmed_db):
    url, study = confirmed_db
    items = load_confirmed(study)
    assert [c.subject for c in items] == ["preset:unet", "trial:0", "trial:1", "trial:2"]
    one = items[2]
    assert one.seeds == (0, 1, 2) and one.dice_split == "test"
    assert one.mean("test_dice") == pytest.approx(0.87) and one.std("test_dice") == pytest.approx(0.01)
    assert one.best_seed == 1  # the highest validation Dice, never the test Dice
    assert one.search.values["dice"] == pytest.approx(0.85)
    # confirmed, trial 1 beats trial 0 on Dice and latency; trial 2 stays for its latency; unet is no member
    assert [c.subject for c in confirmed_front(items)] == ["trial:1", "trial:2"]
    assert reference(items).mean("test_dice") == pytest.approx(0.90)
    table = format_confirmed(items)
    assert "0.870 ± 0.010" in table and "unet" in table.splitlines()[-1]
    assert [line[0] for line in table.splitlines()[2:]] == [" ", "*", "*", " "]


def test_more_seeds_win_over_fewer_epochs(confirmed_db):
    url, study = confirmed_db
    with ResultStore(url) as store:
        store.save_confirmation(study.study_name, "trial:0", 24, 0, {"dice": 0.9, "test_dice": 0.95, "latency_ms": 100.0,
                                                                     "size_kb": 200.0}, TINY_TFLITE.read_bytes())
        items = confirmed(study, store.confirmations(study.study_name))
    assert next(c for c in items if c.subject == "trial:0").epochs == 12  # two seeds at 12 epochs, one at 24


def test_claims_are_exclusive_until_stale_and_never_shown(study_db):
    url, study = study_db
    name = study.study_name
    with ResultStore(url) as store:
        assert store.claim_confirmation(name, "trial:0", 12, 0, "a:1", lambda claim: False)
        assert not store.claim_confirmation(name, "trial:0", 12, 0, "b:2", lambda claim: False)  # a is alive
        assert store.confirmations(name) == [] and store.confirmation_model(name, "trial:0", 12, 0) is None
        before = time.time()
        store.beat_confirmation(name, "trial:0", 12, 0, "a:1")
        assert store.claim_confirmation(name, "trial:0", 12, 0, "b:2", lambda claim: claim["heartbeat"] >= before)
        store.save_confirmation(name, "trial:0", 12, 0, {"dice": 0.8}, TINY_TFLITE.read_bytes())
        assert not store.claim_confirmation(name, "trial:0", 12, 0, "c:3", lambda claim: True)  # finished: never again
        assert [c["figures"] for c in store.confirmations(name)] == [{"dice": 0.8}]


def test_export_pick_prefers_confirmed_figures(confirmed_db, tmp_path):
    url, study = confirmed_db
    result = run_cli("export", "--storage", url, "--study", study.study_name, "--pick", "max-dice", "-o", tmp_path / "m.tflite")
    assert result.returncode == 0, result.stderr
    assert "exported trial 1 " in result.stdout and "picked among confirmed figures" in result.stdout  # search: trial 0
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["figures"]["source"] == "confirmed" and sidecar["figures"]["seeds"] == [0, 1, 2]
    assert sidecar["figures"]["best_seed"] == 1 and sidecar["confirmed"]["mean"]["test_dice"] == pytest.approx(0.87)
    written = (tmp_path / "m.tflite").read_bytes()
    assert written == OTHER_TFLITE.read_bytes()  # the best seed's confirmed model, not the search's artifact
    assert sidecar["sha256"] == hashlib.sha256(written).hexdigest() != sidecar["search_sha256"]
    assert sidecar["metrics"]["dice"] == pytest.approx(0.85)  # the search-time figures stay in metrics


def test_export_without_confirmations_says_search_figures(study_db, tmp_path):
    url, study = study_db
    result = run_cli("export", "--storage", url, "--study", study.study_name, "--pick", "max-dice", "-o", tmp_path / "m.tflite")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "m.json").read_text())["figures"]["source"] == "search"
    assert "exported trial 0 " in result.stdout


def test_status_shows_the_confirmed_table(confirmed_db):
    url, study = confirmed_db
    result = run_cli("status", "--storage", url, "--study", study.study_name)
    assert result.returncode == 0, result.stderr
    assert "confirmed: 4 subject(s), 12 epochs" in result.stdout and "0.870 ± 0.010" in result.stdout
    data = json.loads(run_cli("status", "--storage", url, "--study", study.study_name, "--json").stdout)
    assert {c["subject"] for c in data["confirmed"]} == set(RUNS)


def test_confirmed_figure_marks_front_error_bars_and_reference(confirmed_db):
    from studies.confirmed_figures import confirmed_figure, confirmed_info, study_confirmed_figures

    url, study = confirmed_db
    figure = confirmed_figure(confirmed_info(study))
    traces = {trace.name: trace for trace in figure.data if trace.name}
    members = traces["confirmed, on its front"]
    assert list(members.customdata) == [1, 2] and members.marker.symbol == "diamond"
    assert list(members.error_y.array) == pytest.approx([0.01, 0.01 * 2 ** 0.5])
    assert list(traces["confirmed"].customdata) == [0] and traces["confirmed"].marker.color == "white"
    assert list(traces["search front (validation, one seed)"].customdata) == [0, 1, 2]
    assert "test Dice 0.870 ± 0.010" in members.text[0]  # means ± std over seeds, as in status
    dashed = [shape for shape in figure.layout.shapes if shape.line.dash == "dash"]
    assert sorted((s.type, s.y0 if s.y0 == s.y1 else s.x0) for s in dashed) == [("line", 0.90), ("line", 30.0)]
    assert set(study_confirmed_figures(study)) == {"confirmed"}


def test_no_confirmations_no_figure(study_db):
    from studies.confirmed_figures import study_confirmed_figures

    assert study_confirmed_figures(study_db[1]) == {}


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / 22.5 ** 0.5)  # average ranks for the tie
    assert spearman([1], [2]) is None
