"""status computation and the `search status` / `search studies` commands."""

from __future__ import annotations

import json

import pytest

from studies import status
from tests.conftest import run_cli


def test_study_status_counts_front_time_overhead(study_db):
    _, study = study_db
    result = status.study_status(study)
    assert result.states == {"COMPLETE": 4, "FAIL": 1}
    assert [p.number for p in result.front] == [0, 1, 2]  # by dice, best first
    assert 0 < result.hypervolume < 1
    assert result.stage_seconds == {"train": 40.0, "convert": 8.0, "latency": 4.0}
    assert result.overhead_seconds == pytest.approx(4.0)  # 1 s per trial inside it
    assert result.between_seconds == pytest.approx(2.0)  # 0.5 s before each
    assert result.overhead_fraction == pytest.approx(6.0 / 58.0)
    text = status.format_status(result)
    assert "trials: 5 (complete 4, fail 1)" in text and "hypervolume" in text
    assert "overhead 4.0s in trials + 2.0s between = 10.3%" in text


def test_status_cli(study_db, tmp_path):
    url, _ = study_db
    result = run_cli("status", "--storage", url, cwd=tmp_path)  # default: the most recent study, demo
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("study demo in sqlite:///")
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "summary"])
    assert [line.split()[0] for line in lines[header + 1:header + 4]] == ["0", "1", "2"]
    assert "latency ms" in lines[header] and "size KB" in lines[header]

    data = json.loads(run_cli("status", "--storage", url, "--study", "demo", "--json", cwd=tmp_path).stdout)
    assert data["states"] == {"COMPLETE": 4, "FAIL": 1}
    assert [row["number"] for row in data["front"]] == [0, 1, 2] and data["front"][1]["latency_ms"] == 20.0

    missing = run_cli("status", "--storage", url, "--study", "nope", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"search: error: no study 'nope' in {url}; available: empty, demo (see 'search studies')"

    (tmp_path / "fresh").mkdir()
    no_db = run_cli("status", cwd=tmp_path / "fresh")
    assert no_db.returncode == 2 and "no database at studies.db" in no_db.stderr


def test_studies_cli(study_db, tmp_path):
    url, _ = study_db
    result = run_cli("studies", "--storage", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table, space = result.stdout.split("\n\n")
    rows = [line.split() for line in table.splitlines()[1:]]
    assert [row[:6] for row in rows] == [["empty", "0", "0", "0", "0", "0"], ["demo", "5", "4", "0", "1", "0"]]
    assert space.startswith("space: ") and "artifacts" in space  # what takes the room, below the table
    data = json.loads(run_cli("studies", "--storage", url, "--json", cwd=tmp_path).stdout)
    assert [(d["name"], d["n_trials"]) for d in data] == [("empty", 0), ("demo", 5)]
    bad = run_cli("studies", "--storage", "redis://localhost", cwd=tmp_path)
    assert bad.returncode == 2 and "sqlite:///" in bad.stderr


def test_every_reader_takes_the_default_study_by_one_rule_and_says_so(tmp_path):
    """A side study made after the default one does not become every command's default."""
    import datetime

    from studies.names import default_study_name
    from studies.storage import latest_study, list_studies
    from tests.studies.helpers import make_study

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    older, newer = default_study_name(datetime.date(2026, 11, 30)), default_study_name(datetime.date(2026, 12, 1))
    for name in (newer, older, "side"):  # "side" is the most recently active
        make_study(url, name, [(0.8, 10.0, 100.0)])
    assert latest_study(list_studies(url)).name == newer
    result = run_cli("status", "--storage", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"study {newer} in sqlite:///")
    assert f"study {newer} (the default: the newest search-<date> study" in result.stderr
    quiet = run_cli("status", "--storage", url, "--study", "side", cwd=tmp_path)
    assert quiet.stdout.startswith("study side") and "the default" not in quiet.stderr
    only_named = f"sqlite:///{tmp_path / 'named.db'}"
    for name in ("a", "b"):
        make_study(only_named, name, [(0.8, 10.0, 100.0)])
    assert latest_study(list_studies(only_named)).name == "b"  # no default-named study: the most recently active


def test_status_shows_dice_intervals_flags_unsteady_latencies_and_names_the_device(tmp_path):
    import optuna

    from tests.studies.helpers import attrs

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=url, study_name="s", directions=["maximize", "minimize", "minimize"])
    study.set_metric_names(["dice", "latency_ms", "size_kb"])
    for values, extra in (((0.8, 10.0, 100.0), {"dice_ci95": [0.75, 0.85]}), ((0.6, 2.0, 50.0), {"latency_unsteady": True})):
        study.add_trial(optuna.trial.create_trial(values=list(values), user_attrs={**attrs(*values), **extra}))
    study.set_user_attr("device:local", {"cpu": "Some CPU", "cpu_features": ["avx2"], "cores": 2, "machine": "x86_64"})
    result = status.study_status(study)
    text = status.format_status(result)
    assert "0.800 ± 0.050" in text and "~2.0" in text
    assert "1 latency(ies) stayed above the CV target" in text
    assert "measured on local: Some CPU, 2 cores, x86_64; int8-relevant features: avx2 (this machine" in text
    assert result.to_dict()["front"][1]["latency_unsteady"] is True and result.to_dict()["devices"]["local"]["cores"] == 2


def test_status_names_front_members_no_better_than_a_constant_mask(tmp_path):
    """The study stores the constant mask's per-image Dice; a member level with it on these images is
    named (paired, as the front's ties), one better on every image is not, nor is anything in a
    study made before the baseline was stored."""
    import optuna

    from tests.studies.helpers import attrs

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=url, study_name="s", directions=["maximize", "minimize", "minimize"])
    study.set_metric_names(["dice", "latency_ms", "size_kb"])
    baseline = [0.90, 0.80, 0.85, 0.88, 0.83, 0.86]
    for values, shift in (((0.854, 1.0, 50.0), (0.004, -0.002)), ((0.905, 9.0, 900.0), (0.05, 0.05))):
        per_image = [round(b + shift[i % 2], 4) for i, b in enumerate(baseline)]
        study.add_trial(optuna.trial.create_trial(values=list(values), user_attrs={**attrs(*values), "dice_per_image": per_image}))
    assert status.study_status(study).no_better_than_constant == []  # no baseline stored
    study.set_user_attr("constant_mask", baseline)
    result = status.study_status(study)
    assert result.no_better_than_constant == [0] and result.constant_mask_dice == pytest.approx(0.8533, abs=1e-4)
    assert "! no better than a constant mask (Dice 0.853" in status.format_status(result)
    assert "interval): #0;" in status.format_status(result)
    assert "--pick 'dice>=0.855,min:latency'" in status.format_status(result)
    assert result.to_dict()["no_better_than_constant_mask"] == [0]
    # the hypervolume with the constant mask as its Dice reference: both boxes by hand, minus their overlap
    assert result.hypervolume_above_constant == pytest.approx(0.006754, abs=1e-6)
    assert "), 0.0068 above the constant mask\n" in status.format_status(result)
    assert result.to_dict()["hypervolume_above_constant_mask"] == result.hypervolume_above_constant
