"""Bad input through the real command line: one line on stderr naming the problem and the fix, exit
status 2 (1 for a runtime failure such as an unreachable board), no traceback, the database unchanged.

Cases already covered elsewhere are listed in tests/reliability/README.md and not repeated here.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, run_cli
from tests.reliability.helpers import QUICK, assert_error, load_study, rows_digest

pytestmark = pytest.mark.timeout(600)


# -- fixtures ------------------------------------------------------------------------------------
def write(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def folder(root, count=4):
    """``count`` RGB images with random masks in ``root/images`` and ``root/masks``."""
    rng = np.random.default_rng(0)
    for index in range(count):
        write(root / "images" / f"x{index}.png", rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        write(root / "masks" / f"x{index}.png", (rng.uniform(size=(40, 40)) > 0.5).astype(np.uint8) * 255)
    return root


def start(url, *args, cwd):
    return run_cli("start", "--budget", "2", "--study", "new", "--storage", url, *QUICK, *args, cwd=cwd)


# -- --data --------------------------------------------------------------------------------------
def _empty(root):
    root.mkdir()


def _no_masks(root):
    shutil.rmtree(folder(root) / "masks")


def _one_mask_missing(root):
    (folder(root) / "masks" / "x2.png").unlink()


def _corrupt_png(root):
    (folder(root) / "images" / "x1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))


def _text_named_png(root):
    (folder(root) / "images" / "x1.png").write_text("these are notes, not an image\n")


def _single_image(root):
    folder(root, count=1)


def _nan_pixels(root):
    image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    image[5, 5] = np.nan
    write(folder(root) / "images" / "x9.tif", image, "F")
    write(root / "masks" / "x9.png", np.zeros((40, 40), np.uint8))


@pytest.mark.parametrize("make, texts", [
    (_empty, ("no images/ folder", "put images in images/")),
    (_no_masks, ("no masks/ folder", "masks with the same names")),
    (_one_mask_missing, ("no mask in masks/ for x2.png", "add masks")),
    (_corrupt_png, ("x1.png: cannot read this image", "replace or remove")),
    (_text_named_png, ("x1.png: cannot read this image", "replace or remove")),
    (_single_image, ("too few to split", "add more")),
    (_nan_pixels, ("x9.tif: holds NaN or infinite pixel values", "replace or remove")),
], ids=lambda value: getattr(value, "__name__", "")[1:] or None)
def test_bad_data_is_one_line_and_leaves_the_database_alone(tmp_path, database, make, texts):
    path, url = database
    before = rows_digest(path)
    make(tmp_path / "data")
    result = start(url, "--data", tmp_path / "data", cwd=tmp_path)
    assert_error(result, 2, *texts)
    assert rows_digest(path) == before


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_odd_but_valid_images_train_and_empty_masks_warn_once(tmp_path):
    """16-bit grayscale, RGBA, a 40:1 and a 1:30 aspect ratio, and masks that are all background:
    the search runs, says once that the masks are empty, and the Dice of its trial is defined."""
    data = tmp_path / "data"
    write(data / "images" / "gray16.png", (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 20))
    write(data / "images" / "rgba.png", np.random.default_rng(1).integers(0, 255, (30, 50, 4), dtype=np.uint8))
    write(data / "images" / "wide.png", np.full((10, 400, 3), 90, np.uint8))
    write(data / "images" / "tall.png", np.full((300, 10, 3), 160, np.uint8))
    write(data / "images" / "rgb.jpg", np.full((32, 32, 3), 60, np.uint8))
    for image in (data / "images").iterdir():
        write(data / "masks" / f"{image.stem}.png", np.zeros((20, 20), np.uint8))
    result = run_cli("start", "--budget", "1", "--study", "odd", "--data", data, *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""  # no Python warning, no progress bar residue
    assert result.stdout.count("5 of 5 masks are all background") == 1
    (trial,) = load_study(tmp_path / "studies.db", "odd").get_trials()
    assert trial.state.name == "COMPLETE", trial.user_attrs.get("error")
    assert 0.0 <= trial.user_attrs["dice"] <= 1.0


# -- --image-size ----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, texts", [
    (("--image-size", "36", "--depths", "3"), ("--image-size: 36 cannot be halved 3 times", "multiple of 8 such as 32")),
    (("--image-size", "40", "--depths", "3,4"), ("40 cannot be halved 4 times (depth 4 of --depths)", "multiple of 16")),
    (("--image-size", "8", "--depths", "3"), ("8 cannot be halved 3 times", "such as 16")),
    (("--image-size", "24", "--depths", "3"), ("depth 4 of the presets (--no-presets to skip them)",)),
    (("--image-size", "32", "--depths", "3", "--search-input-size", "32,44"), ("--search-input-size: 44 cannot be halved",)),
])
def test_image_size_the_depth_cannot_halve_fails_before_any_trial(tmp_path, args, texts):
    result = run_cli("start", "--budget", "2", "--data-limit", "20", *args, cwd=tmp_path)
    assert_error(result, 2, *texts)
    assert not (tmp_path / "studies.db").exists()


# -- the budget, run keys and --config values (issue 17) ---------------------------------------------
NO_TRIAL = ("--timeout", "0.001")  # workers start no trial: the deadline passes while they import TensorFlow


def states(path, study):
    """(counted trials by state name, trials withdrawn by a lower budget)."""
    from search.loop import WITHDRAWN, counted

    trials = load_study(path, study).get_trials(deepcopy=False)
    kept = counted(trials)
    names = sorted(t.state.name for t in kept)
    numbers = {t.number for t in kept}
    return {name: names.count(name) for name in names}, sum(WITHDRAWN in t.system_attrs for t in trials if t.number not in numbers)


def test_a_budget_beyond_the_bound_is_refused_before_anything_is_stored(tmp_path, database):
    path, url = database
    before = rows_digest(path)
    result = run_cli("start", "--budget", "99999999999999999999", "--study", "new", "--storage", url, *QUICK,
                     cwd=tmp_path, timeout=120)  # it used to insert WAITING rows until killed
    assert_error(result, 2, "is not a budget", "give 1 to 10,000 trials")
    assert rows_digest(path) == before


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_a_lower_budget_on_continue_withdraws_the_waiting_trials_beyond_it(tmp_path, database):
    path, url = database
    assert start(url, "--budget", "3", *NO_TRIAL, cwd=tmp_path).returncode == 0
    assert states(path, "new") == ({"WAITING": 3}, 0)
    result = start(url, "--budget", "1", *NO_TRIAL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert states(path, "new") == ({"WAITING": 1}, 2)  # never more than asked; the two withdrawn are never run
    assert start(url, "--budget", "2", *NO_TRIAL, cwd=tmp_path).returncode == 0
    assert states(path, "new") == ({"WAITING": 2}, 2)  # a budget raised again counts from what is left


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_timeout_applies_to_its_run_only(tmp_path, database):
    """The issue's case: a study started with a budget and --timeout, continued with a lower budget
    and no --timeout, runs (the timeout used to be stored and applied again: exit 0, nothing run)."""
    path, url = database
    assert start(url, "--budget", "2", *NO_TRIAL, cwd=tmp_path).returncode == 0
    result = run_cli("start", "--study", "new", "--storage", url, "--budget", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    counts, withdrawn = states(path, "new")
    assert withdrawn == 1 and sum(counts.values()) == 1 and "WAITING" not in counts and "RUNNING" not in counts


@pytest.mark.parametrize("text, texts", [
    ('budget = "ten"', ("budget: 'ten' is not a whole number", "--budget 50")),
    ("budget = 3.5", ("budget: 3.5 is not a whole number",)),
    ("workers = 1.5", ("workers: 1.5 is not a whole number",)),
    ('timeout = "soon"', ("timeout: 'soon' is not a number",)),
    ("data-limit = 0", ("data-limit: must be at least 1, got 0",)),
    ('depths = [3, "four"]', ("depths: 'four' is not a whole number",)),
    ("budjet = 5", ("unknown key 'budjet'; did you mean budget?",)),
])
def test_bad_config_values_are_refused_before_anything_is_stored(tmp_path, database, text, texts):
    path, url = database
    (tmp_path / "search.toml").write_text(text + "\n")
    before = rows_digest(path)
    assert_error(start(url, "--config", "search.toml", *NO_TRIAL, cwd=tmp_path), 2, "--config search.toml: ", *texts)
    assert rows_digest(path) == before


@pytest.mark.slow  # 15-30 s: the default tier stays under 15 minutes
def test_a_study_stored_with_bad_run_values_continues(tmp_path, database):
    """Older versions stored unchecked --config values; run keys are not read back, a kept one given
    again replaces the stored one, and one not given is named with its fix. The stored config is kept."""
    import optuna

    from search.config import SearchConfig

    path, url = database
    made = SearchConfig(study="old", storage=url, data_limit=40, image_size=32, epochs=1, depths=(3,), widths=(4,),
                        threads=1).to_dict()
    stored = {**made, "budget": 3.5, "workers": 1.5, "timeout": "soon"}
    study = optuna.create_study(study_name="old", storage=url, directions=SearchConfig().directions)
    study.set_user_attr("config", stored)
    before = rows_digest(path)
    result = run_cli("start", "--study", "old", "--storage", url, *NO_TRIAL, cwd=tmp_path)
    assert_error(result, 2, "study 'old' was stored with a value this version refuses", "--budget: 3.5", "--budget 50")
    assert rows_digest(path) == before
    result = run_cli("start", "--study", "old", "--storage", url, "--budget", "1", *NO_TRIAL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert states(path, "old") == ({"WAITING": 1}, 0)
    assert load_study(path, "old").user_attrs["config"] == json.loads(json.dumps(stored))


# -- --storage -----------------------------------------------------------------------------------
@pytest.mark.parametrize("url, texts", [
    ("mysql://user@localhost/nas", ("scheme 'mysql' is not supported", "postgresql://")),
    ("studies.db", ("'studies.db' is not valid", "sqlite:///studies.db")),
    ("sqlite:///", ("names no file", "sqlite:///studies.db")),
    ("sqlite:///:memory:", ("names no file",)),
    ("sqlite:///missing/folder/studies.db", ("does not exist", "mkdir -p")),
    ("sqlite:///here", ("is a folder", "name a database file")),
])
def test_bad_storage_urls(tmp_path, url, texts):
    (tmp_path / "here").mkdir()
    assert_error(start(url, cwd=tmp_path), 2, *texts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]


def test_file_that_is_not_a_database_is_refused_and_kept(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"my notes, not a database\n" * 100)
    assert_error(start(f"sqlite:///{path}", cwd=tmp_path), 2, "is not a SQLite database", "new file name")
    assert path.read_bytes() == b"my notes, not a database\n" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_database_of_a_newer_schema_is_refused_and_kept(tmp_path, database):
    import sqlite3

    from studies import records

    path, url = database
    with sqlite3.connect(path) as connection:
        connection.execute("update naslite_schema set version = ?", (records.SCHEMA_VERSION + 1,))
    connection.close()
    before = rows_digest(path)
    assert_error(start(url, cwd=tmp_path), 2, "newer nas-lite", "pip install -U nas-lite")
    assert_error(run_cli("export", "--storage", url, "--trial", "0", "-o", tmp_path / "m.tflite"), 2, "newer nas-lite")
    assert rows_digest(path) == before and not (tmp_path / "m.tflite").exists()


def _in_private_mount(script: str, **env) -> subprocess.CompletedProcess:
    """Run the shell ``script`` in a private mount namespace (its mounts vanish with it)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to mount a filesystem of its own")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_unwritable_storage_folder(tmp_path):
    """A folder nobody may write: a read-only filesystem as root, file modes otherwise."""
    locked = tmp_path / "locked"
    locked.mkdir()
    command = [sys.executable, "-m", "search", "start", "--budget", "1", "--storage", f"sqlite:///{locked}/studies.db", *QUICK]
    if os.geteuid() == 0:  # root writes through file modes: mount a read-only filesystem there instead
        result = _in_private_mount(f"mount -t tmpfs -o ro,size=64k tmpfs {shlex.quote(str(locked))}; exec {shlex.join(command)}")
    else:
        locked.chmod(0o555)
        result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert_error(result, 2, "cannot create a database in", "choose a writable folder")


# -- --device --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("url, status, texts", [
    ("raspberrypi.local:8765", 2, ("is not a URL like http://raspberrypi.local:8765",)),
    ("http://pi.local:port", 2, ("is not a URL like",)),
    ("http://127.0.0.1:{port}", 1, ("http://127.0.0.1:", "unreachable (connection refused; is the agent running?)")),
    ("http://nowhere.invalid:8765", 1, ("http://nowhere.invalid:8765: unreachable",)),
])
def test_device_that_cannot_measure_stops_the_search_before_training(tmp_path, database, url, status, texts):
    path, storage = database
    before = rows_digest(path)
    result = start(storage, "--device", url.format(port=_free_port()), cwd=tmp_path)
    assert_error(result, status, *texts)
    assert rows_digest(path) == before


def test_wrong_token_stops_the_search_before_training(tmp_path, database):
    from tests.evaluators.latency_helpers import running_agent

    path, storage = database
    before = rows_digest(path)
    with running_agent(token="right") as (url, _):
        result = start(storage, "--device", url, "--device-token", "wrong", cwd=tmp_path)
        assert_error(result, 2, f"{url}: token refused", "--device-token")
        result = start(storage, "--device", url, cwd=tmp_path)  # no token at all
        assert_error(result, 2, "token refused")
    assert rows_digest(path) == before


# -- export and predict ----------------------------------------------------------------------------
@pytest.mark.parametrize("args, texts", [
    (("--study", "nope", "--trial", "0"), ("no study 'nope'", "available: earlier")),
    (("--study", "earlier", "--trial", "42"), ("no trial 42", "numbered 0 to 1")),
    (("--study", "earlier", "--pick", "dice>=0.99,min:latency"), ("no complete feasible trial meets dice>=0.99",)),
    (("--study", "earlier", "--trial", "1"), ("trial 1 of study earlier has no stored .tflite", "choose another")),
    (("--study", "earlier", "--trial", "0", "-o", "missing/m.tflite"), ("does not exist", "mkdir -p")),
])
def test_export_errors_leave_the_database_alone(tmp_path, database, args, texts):
    path, url = database
    before = rows_digest(path)
    output = () if "-o" in args else ("-o", "m.tflite")
    assert_error(run_cli("export", "--storage", url, *args, *output, cwd=tmp_path), 2, *texts)
    assert rows_digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("studies.db")) == []


def test_predict_on_a_file_that_is_not_tflite(tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(b"this is not a flatbuffer" * 10)
    write(tmp_path / "image.png", np.zeros((32, 32, 3), np.uint8))
    assert_error(run_cli("predict", model, tmp_path / "image.png", "-o", tmp_path, cwd=tmp_path), 2, "model.tflite")


# -- --debug -----------------------------------------------------------------------------------------
def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "start", "--budget", "1", "--data", tmp_path / "nowhere", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr and "DatasetError" in result.stderr
