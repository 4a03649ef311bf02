"""``search predict``: masks and overlays from a TFLite model, as on the Pi."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from space.convert import to_tflite
    from space.model import build
    from space.spec import uniform

    path = tmp_path_factory.mktemp("model") / "model.tflite"
    path.write_bytes(to_tflite(build(uniform("standard", depth=3, base_width=4, input_size=32), seed=0)))
    return path


def write_images(folder):
    rng = np.random.default_rng(0)
    shapes = {"rgb.png": (50, 70, 3), "gray.png": (40, 40), "rgba.png": (20, 30, 4), "same.jpg": (32, 32, 3)}
    for name, shape in shapes.items():
        Image.fromarray((rng.uniform(0, 1, shape) * 255).astype(np.uint8)).save(folder / name)
    return {folder / name: shape[:2] for name, shape in shapes.items()}


def test_predict_writes_masks_and_overlays_at_the_original_size(cli, model_file, tmp_path):
    images = write_images(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("predict", model_file, *images, "-o", out, "--threshold", "0.5")
    assert result.returncode == 0, result.stderr
    for path, (height, width) in images.items():
        mask = Image.open(out / f"{path.stem}_mask.png")
        overlay = Image.open(out / f"{path.stem}_overlay.png")
        assert mask.size == overlay.size == (width, height)
        assert mask.mode == "L" and set(np.unique(np.asarray(mask))) <= {0, 255}
        assert overlay.mode == "RGB"
    assert "rgb.png -> rgb_mask.png, rgb_overlay.png" in result.stdout


@pytest.mark.parametrize("problem", ["not-tflite", "missing-image", "missing-output"])
def test_predict_errors_are_one_line_and_status_2(cli, model_file, tmp_path, problem):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    model, images, out = model_file, [image], tmp_path
    if problem == "not-tflite":
        model = image
    elif problem == "missing-image":
        images = [image, tmp_path / "nope.png"]
    else:
        out = tmp_path / "no-such-folder"
    result = cli("predict", model, *images, "-o", out)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("search:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    expected = {"not-tflite": "not a TFLite model", "missing-image": "no such image", "missing-output": "does not exist"}
    assert expected[problem] in lines[0]
