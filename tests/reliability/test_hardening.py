"""Issue 17, items 7, 9, 10, 12 and 13 through the real command line (the agent's items are in
test_agent_security.py): exported files, exit statuses, predict's output, names with escape
sequences, and non-finite data, each checked the way the README's case table says."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.reliability.helpers import assert_error, rows_digest
from tests.studies.helpers import TINY_TFLITE, make_study

pytestmark = pytest.mark.timeout(600)

EVIL = "evil\x1b[2J\x1b]0;owned\x07\rname\x9b31m"


# -- 12: names that are terminal escape sequences ------------------------------------------------------
def test_names_with_escape_sequences_are_printed_escaped(tmp_path, database):
    from studies.storage import open_storage

    path, url = database
    make_study(open_storage(url), EVIL, [(0.8, 10.0, 100.0)])
    for args in (("studies",), ("status", "--study", EVIL), ("status", "--study", EVIL + "x")):
        result = run_cli(*args, "--storage", url, cwd=tmp_path)
        for control in ("\x1b", "\x07", "\r", "\x9b"):
            assert control not in result.stdout + result.stderr, (args, result.stdout, result.stderr)
        assert result.returncode == (2 if args[-1].endswith("x") else 0), result.stderr
        assert "evil\\x1b[2J" in result.stdout + result.stderr


# -- 9: exit status 2 and a clear line -------------------------------------------------------------------
def png_header(path, width: int, height: int) -> None:
    """A PNG that declares ``width`` x ``height`` RGB pixels and holds almost none: readers must refuse
    it from its header, before they decode (14000x14000 would be 2.2 GiB as float32)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def small_folder(root, count=4):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / "images" / f"x{index}.png")
        Image.fromarray((rng.uniform(size=(40, 40)) > 0.5).astype(np.uint8) * 255).save(root / "masks" / f"x{index}.png")
    return root


@pytest.mark.parametrize("side, text", [(14000, "too many pixels to read"), (9000, "9000x9000 pixels")])
def test_an_image_beyond_the_pixel_limit_is_refused_from_its_header(tmp_path, database, side, text):
    path, url = database
    data = small_folder(tmp_path / "data")
    png_header(data / "images" / "x0.png", side, side)
    before = rows_digest(path)
    result = run_cli("start", "--budget", "1", "--study", "new", "--storage", url, "--data", data, "--no-presets", cwd=tmp_path)
    assert_error(result, 2, "x0.png", text, "up to 8192x8192 pixels", "downscale it")
    assert rows_digest(path) == before
    assert_error(run_cli("predict", TINY_TFLITE, data / "images" / "x0.png", "-o", tmp_path, cwd=tmp_path), 2, text)


@pytest.mark.parametrize("args, texts", [
    (("start", "--image-size", "1048576", "--budget", "1", "--study", "new"), ("--image-size", "give 1 to 2048")),
    (("start", "--search-input-size", "32,1048576", "--budget", "1", "--study", "new"), ("--search-input-size", "2048")),
    (("presets", "--image-size", "1048576"), ("--image-size", "give 1 to 2048")),
    (("agent", "serve", "--port", "70000"), ("--port: 70000 is not a port", "0 to 65535")),
    (("dashboard", "--host", "203.0.113.9"), ("--host 203.0.113.9: not an address of this machine", "use 127.0.0.1")),
])
def test_out_of_range_values_are_status_2_with_one_clear_line(tmp_path, database, args, texts):
    """The dashboard's address is checked against this machine's own (Linux's /proc/net) before any
    bind: nothing is bound to, or sent to, 203.0.113.9 (TEST-NET-3)."""
    path, url = database
    before = rows_digest(path)
    storage = ("--storage", url) if args[0] in ("start", "dashboard") else ()
    assert_error(run_cli(*args, *storage, cwd=tmp_path, timeout=120), 2, *texts)
    assert rows_digest(path) == before


# -- 10: predict's errors are its only line ----------------------------------------------------------
def _two_input_model(path) -> None:
    from space import _tf

    tf, keras = _tf.tensorflow(), _tf.keras()
    first, second = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    output = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(keras.layers.Add()([first, second]))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model([first, second], output)).convert())


def test_predict_errors_are_one_line_before_any_litert_chatter(tmp_path):
    model, image = tmp_path / "two.tflite", small_folder(tmp_path / "data", 1) / "images" / "x0.png"
    _two_input_model(model)
    line = assert_error(run_cli("predict", model, image, "-o", tmp_path, cwd=tmp_path), 2,
                        "is not a segmentation model", "input [1, 16, 16, 3]", "1 more input")
    assert "np.int32" not in line
    result = run_cli("predict", TINY_TFLITE, image, "-o", tmp_path, cwd=tmp_path)
    assert result.returncode == 0 and "INFO" not in result.stderr, result.stderr


# -- 7: exported files ---------------------------------------------------------------------------
def export(url, output, *extra):
    return run_cli("export", "--storage", url, "--study", "earlier", "--trial", "0", "-o", output, *extra, cwd=output.parent)


def assert_pair_matches(model, described) -> None:
    import hashlib
    import json

    if described.exists():
        assert json.loads(described.read_text())["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()


def test_export_replaces_no_unrelated_file_without_force_and_writes_ordinary_modes(tmp_path, database):
    import os

    path, url = database
    model, described = tmp_path / "existing.tflite", tmp_path / "existing.json"
    described.write_text('{"my": "settings"}')
    assert_error(export(url, model), 2, "existing.json exists and is not a nas-lite sidecar", "--force")
    assert described.read_text() == '{"my": "settings"}' and not model.exists()
    described.unlink()
    model.write_bytes(b"my own model")
    assert_error(export(url, model), 2, "existing.tflite exists and was not exported by nas-lite", "--force")
    assert model.read_bytes() == b"my own model" and not described.exists()
    assert export(url, model, "--force").returncode == 0
    assert export(url, model).returncode == 0  # an earlier export of nas-lite's is replaced without asking
    assert_pair_matches(model, described)
    umask = os.umask(0o022)
    os.umask(umask)
    assert {oct(p.stat().st_mode & 0o777) for p in (model, described)} == {oct(0o666 & ~umask)}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("studies.db")) == ["existing.json", "existing.tflite"]


KILL_AT = """
import os, signal, sys
from search.cli import main
calls, real = [0], os.replace
def replace(*args, **kwargs):
    calls[0] += 1
    if calls[0] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
os.replace = replace
main(sys.argv[2:])
"""


@pytest.mark.parametrize("kill_at", [1, 2])
def test_a_kill_between_the_two_renames_never_leaves_a_mismatched_pair(tmp_path, database, kill_at):
    import hashlib
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    path, url = database
    model, described = tmp_path / "model.tflite", tmp_path / "model.json"
    model.write_bytes(b"an older export")
    described.write_text(json.dumps({"format": "nas-lite-export/1", "sha256": hashlib.sha256(b"an older export").hexdigest()}))
    args = ["export", "--storage", url, "--study", "earlier", "--trial", "0", "-o", str(model)]
    killed = subprocess.run([sys.executable, "-c", KILL_AT, str(kill_at), *args], cwd=tmp_path, capture_output=True,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert model.exists()
    assert_pair_matches(model, described)
    assert export(url, model, "--force").returncode == 0  # the same command, forced, completes the pair
    assert described.exists()
    assert_pair_matches(model, described)


# -- 13: non-finite data fail the trial on every CPU ------------------------------------------------------
def test_nan_data_fail_training_even_where_the_kernels_swallow_the_nan():
    """A kernel that returns the other operand of a max for a NaN (AVX-512's do) gives a finite loss on
    NaN images: the model here maps NaN to 0 at its input, as such a kernel would, on any CPU. The data
    are checked before the first step, so training fails with the reason wherever it runs."""
    import numpy as np

    from evaluators.data import load_dataset
    from evaluators.train import TrainingError, train
    from space import _tf

    tf, keras = _tf.tensorflow(), _tf.keras()
    inputs = keras.Input((32, 32, 3))
    swallowed = keras.layers.Lambda(lambda x: tf.where(tf.math.is_finite(x), x, tf.zeros_like(x)))(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(swallowed))
    clean = load_dataset("synthetic", 32, synthetic_count=20)
    images = clean.train_images.copy()
    images[2, 3, 3, 0] = np.nan
    data = type(clean)(images, clean.train_masks, clean.val_images, clean.val_masks, "nan")
    with pytest.raises(TrainingError, match=r"the training images hold NaN or infinite values \(1 image\(s\), the first at index 2\)"):
        train(model, data, epochs=1, batch_size=8)
    train(model, clean, epochs=1, batch_size=8)  # the same model trains on the clean data
