"""``search data write``: the built-in dataset as PNG files that ``start --data`` and ``predict`` read."""

import numpy as np
from PIL import Image

from tests.conftest import run_cli


def test_written_pairs_are_the_generated_dataset_and_read_back_as_a_folder(tmp_path):
    from evaluators.data import load_folder, synthetic

    folder = tmp_path / "pairs"
    result = run_cli("data", "write", "--count", "6", "--image-size", "32", "--seed", "3", "-o", folder)
    assert result.returncode == 0, result.stderr
    assert "wrote 6 pairs" in result.stdout
    names = sorted(p.name for p in (folder / "images").iterdir())
    assert names == sorted(p.name for p in (folder / "masks").iterdir()) == [f"000{i}.png" for i in range(6)]
    assert set(np.unique(np.asarray(Image.open(folder / "masks" / "0000.png")))) <= {0, 255}
    images, masks, _ = load_folder(folder, 32)
    expected_images, expected_masks = synthetic(6, 32, 3, seed=3)
    assert np.abs(images - expected_images).max() <= 1 / 255 + 1e-6  # PNG keeps 8 bits
    assert np.array_equal(masks, expected_masks)


def test_start_and_predict_accept_the_written_folder(tmp_path):
    folder = tmp_path / "pairs"
    assert run_cli("data", "write", "--count", "10", "--image-size", "32", "-o", folder).returncode == 0
    # an unreachable board stops the start right after the data is read: no training
    result = run_cli("start", "--budget", "1", "--data", folder, "--device", "http://127.0.0.1:9", cwd=tmp_path)
    assert f"loading data: {folder} at 32x32" in result.stdout and "loaded in" in result.stdout, result.stderr
    assert "unreachable" in result.stderr

    from space.convert import to_tflite
    from space.model import build
    from space.spec import uniform

    model = tmp_path / "model.tflite"
    model.write_bytes(to_tflite(build(uniform("standard", depth=3, base_width=4, input_size=32), seed=0)))
    (tmp_path / "out").mkdir()
    result = run_cli("predict", model, folder / "images" / "0000.png", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "0000_mask.png").is_file()


def test_a_folder_that_already_holds_images_is_refused_and_kept(tmp_path):
    folder = tmp_path / "pairs"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "mine.png").write_bytes(b"keep me")
    result = run_cli("data", "write", "--count", "2", "-o", folder)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "already holds files" in result.stderr
    assert (folder / "images" / "mine.png").read_bytes() == b"keep me"
    assert not (folder / "masks").exists()
