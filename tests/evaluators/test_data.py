import io
import sys

import numpy as np
import pytest
from PIL import Image

from evaluators import data as data_module
from evaluators.data import Dataset, DatasetError, load_dataset, read_image, synthetic


def test_synthetic_is_deterministic_per_seed_and_index():
    images, masks = synthetic(6, 32, seed=7)
    again, _ = synthetic(3, 32, seed=7)
    other, _ = synthetic(3, 32, seed=8)
    assert images.shape == (6, 32, 32, 3) and masks.shape == (6, 32, 32, 1)
    assert np.array_equal(images[:3], again)
    assert not np.array_equal(images[:3], other)
    assert images.min() >= 0 and images.max() <= 1
    assert set(np.unique(masks)) == {0.0, 1.0}


def test_synthetic_is_hard_for_brightness_alone():
    images, masks = synthetic(40, 64, seed=0)
    foreground = masks.mean()
    assert 0.03 < foreground < 0.3
    # The best brightness threshold must leave a poor Dice: distractors are as bright as targets.
    brightness = images.mean(axis=-1, keepdims=True)
    best = 0.0
    for threshold in np.linspace(0.1, 0.9, 33):
        predicted = brightness > threshold
        dice = 2 * (predicted * masks).sum() / (predicted.sum() + masks.sum())
        best = max(best, dice)
    assert best < 0.6


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stderr, progress, shown", [(_Terminal, True, True), (_Terminal, False, False),
                                                     (io.StringIO, True, False)])
def test_generating_the_builtin_data_shows_a_bar_with_an_eta_on_a_terminal_only(monkeypatch, stderr, progress, shown):
    monkeypatch.setattr(data_module, "PROGRESS_DELAY", 0)
    screen = stderr()
    monkeypatch.setattr(sys, "stderr", screen)
    load_dataset("synthetic", 16, synthetic_count=6, progress=progress)
    drawn = screen.getvalue()
    assert ("generating data" in drawn and "/6 [" in drawn and "<" in drawn) == shown  # k/N [elapsed<ETA


def test_split_is_deterministic_and_disjoint():
    first = load_dataset("synthetic", 32, seed=3, synthetic_count=20)
    second = load_dataset("synthetic", 32, seed=3, synthetic_count=20)
    assert len(first.train_images) == 16 and len(first.val_images) == 4
    assert np.array_equal(first.val_images, second.val_images)
    train_keys = {image.tobytes() for image in first.train_images}
    assert not any(image.tobytes() in train_keys for image in first.val_images)


def test_shipped_nuclei_folder_loads(small_nuclei):
    data = load_dataset(small_nuclei, 64, seed=0)
    assert data.train_images.shape == (96, 64, 64, 3) and data.val_images.shape == (24, 64, 64, 3)
    assert 0.05 < data.train_masks.mean() < 0.35  # nuclei cover about 14% of dsb2018
    assert set(np.unique(data.train_masks)) == {0.0, 1.0}


@pytest.mark.shared
def test_isbi_folder_loads(shared_datasets):
    data = load_dataset(shared_datasets / "isbi2012_membrane", 64, channels=1, seed=0)
    assert data.train_images.shape == (24, 64, 64, 1) and data.val_images.shape == (6, 64, 64, 1)
    assert 0.6 < data.train_masks.mean() < 0.9  # cell interior is about 78%
    assert set(np.unique(data.train_masks)) == {0.0, 1.0}


def write(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(4):
        write(tmp_path / "images" / f"x{index}.png", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
        write(tmp_path / "masks" / f"x{index}.png", (rng.uniform(size=(40, 60)) > 0.5).astype(np.uint8) * 255)
    return tmp_path


def test_folder_of_mixed_formats_loads(folder):
    write(folder / "images" / "gray16.tif", (np.arange(30 * 30, dtype=np.uint16).reshape(30, 30) * 70))
    write(folder / "masks" / "gray16.png", np.full((30, 30), 255, np.uint8))
    write(folder / "images" / "rgba.png", np.full((20, 90, 4), 200, np.uint8))
    write(folder / "masks" / "rgba.bmp", np.zeros((20, 90), np.uint8))
    data = load_dataset(folder, 32, seed=0, val_fraction=0.34)
    assert len(data.train_images) + len(data.val_images) == 6
    assert data.train_images.shape[1:] == (32, 32, 3)
    assert 0 <= data.train_images.min() and data.train_images.max() <= 1


def test_sixteen_bit_gray_is_scaled_to_unit_range(tmp_path):
    write(tmp_path / "g.png", np.full((8, 8), 65535, np.uint16))
    assert read_image(tmp_path / "g.png", 8).max() == pytest.approx(1.0)


def test_all_background_masks_warn_but_load(folder):
    write(folder / "masks" / "x0.png", np.zeros((40, 60), np.uint8))
    with pytest.warns(UserWarning, match="all background"):
        data = load_dataset(folder, 32)
    assert data.warnings


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda root: root / "missing", "no such folder"),
        (lambda root: (root / "images" / "x0.png"), "not a folder"),
        (lambda root: (_rm(root / "masks"), root)[1], "no masks/ folder"),
        (lambda root: ([_rm(f) for f in (root / "images").iterdir()], root)[1], "images/ holds no"),
        (lambda root: (_rm(root / "masks" / "x2.png"), root)[1], "no mask in masks/ for x2.png"),
        (lambda root: ((root / "images" / "x1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"), root)[1], "x1.png: cannot read"),
        (lambda root: ((root / "images" / "x3.png").write_text("not an image"), root)[1], "x3.png: cannot read"),
    ],
)
def test_broken_folders_are_named_clearly(folder, breakage, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(breakage(folder), 32)


def test_single_pair_is_too_few(folder):
    for index in (1, 2, 3):
        _rm(folder / "images" / f"x{index}.png")
    with pytest.raises(DatasetError, match="too few to split"):
        load_dataset(folder, 32)


def _rm(path):
    import shutil

    shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_test_split_is_held_out_and_leaves_the_validation_split_of_earlier_versions():
    plain = load_dataset("synthetic", 32, seed=3, synthetic_count=40)
    held = load_dataset("synthetic", 32, seed=3, synthetic_count=40, test_fraction=0.2)
    assert plain.test_images.shape[0] == 0 and not plain.has_test
    assert (len(held.train_images), len(held.val_images), len(held.test_images)) == (24, 8, 8)
    keys = lambda images: {image.tobytes() for image in images}  # noqa: E731
    assert not keys(held.test_images) & (keys(held.train_images) | keys(held.val_images))
    assert keys(held.test_images) != keys(load_dataset("synthetic", 32, seed=4, synthetic_count=40, test_fraction=0.2).test_images)
    assert "8 test" in held.describe()


def test_a_folder_brings_its_own_test_split(folder):
    rng = np.random.default_rng(1)
    for index in range(3):
        write(folder / "test" / "images" / f"t{index}.png", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
        write(folder / "test" / "masks" / f"t{index}.png", (rng.uniform(size=(20, 20)) > 0.5).astype(np.uint8) * 255)
    data = load_dataset(folder, 16, seed=0, test_fraction=0.5)
    assert len(data.test_images) == 3 and len(data.train_images) + len(data.val_images) == 4


@pytest.mark.parametrize("fractions", [dict(test_fraction=1.0), dict(val_fraction=0.5, test_fraction=0.5)])
def test_fractions_that_leave_nothing_to_train_on_are_refused(fractions):
    with pytest.raises(DatasetError, match="fraction"):
        load_dataset("synthetic", 32, synthetic_count=20, **fractions)


def test_the_description_gives_the_dice_a_constant_mask_scores():
    masks = np.zeros((2, 4, 4, 1), np.float32)
    masks[0, :, :2] = 1  # half foreground: an all-foreground mask scores 2 * 8 / (8 + 16)
    masks[1, :, :3] = 1  # three quarters: 2 * 12 / (12 + 16)
    images = np.zeros((2, 4, 4, 1), np.float32)
    data = Dataset(images, masks, images, masks, "tiny")
    assert data.trivial_dice == pytest.approx((16 / 24 + 24 / 28) / 2)
    assert "a constant mask scores Dice 0.762" in data.describe()
    data = Dataset(images, masks, images, np.zeros_like(masks), "empty")
    assert data.trivial_dice == 1.0  # nothing to find: the empty mask finds it
