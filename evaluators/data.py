"""Datasets: the built-in generated one and folders of ``images/`` + ``masks/``.

Images come out as float32 NHWC scaled to [0, 1]; masks as float32 (N, H, W, 1) with values 0 or 1.

Three splits: train (the candidates learn from it), validation (the search selects on it: the
sampler, early stopping, promotion and the front read only validation figures) and test (held
out for reporting; nothing that chooses reads it). A folder may bring its own ``test/`` (with
``images/`` and ``masks/``); otherwise ``test_fraction`` of the pairs are held out.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MAX_SIDE = 8192  # 8192x8192 RGB is 768 MiB as float32: an image beyond is refused before it is decoded
SYNTHETIC = "synthetic"


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the problem, the files and the fix."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    train_images: np.ndarray
    train_masks: np.ndarray
    val_images: np.ndarray
    val_masks: np.ndarray
    name: str
    warnings: tuple[str, ...] = ()
    test_images: np.ndarray | None = None
    test_masks: np.ndarray | None = None

    @property
    def has_test(self) -> bool:
        return self.test_images is not None and len(self.test_images) > 0

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[-1])

    @property
    def trivial_dice(self) -> float:
        """The validation Dice of the better constant mask (every pixel foreground, or none): what a
        model must beat to have learned anything (0.87 on isbi2012's membranes at 78% foreground)."""
        return float(self.constant_mask_dice().mean())

    def constant_mask_dice(self) -> np.ndarray:
        """Each validation image's Dice of the better constant mask (the one with the higher mean)."""
        from evaluators.accuracy import dice_iou_per_image

        scores = [dice_iou_per_image(np.broadcast_to(np.float32(value), self.val_masks.shape), self.val_masks)[0]
                  for value in (0.0, 1.0)]
        return max(scores, key=np.mean)

    def describe(self) -> str:
        test = f" + {len(self.test_images)} test" if self.has_test else ""
        return (
            f"{self.name}: {len(self.train_images)} train + {len(self.val_images)} validation{test} images, "
            f"{self.image_size}x{self.image_size}x{self.channels}, foreground {self.train_masks.mean():.0%} "
            f"(a constant mask scores Dice {self.trivial_dice:.3f})"
        )


def non_finite(data) -> str | None:
    """What of ``data``'s training and validation arrays is NaN or infinite, or None when all are finite.

    Checked before training, because the NaN loss such values cause is not a guard to rely on: whether
    a NaN survives depends on the CPU's kernels (a max or a clip may return the other operand for a
    NaN, as AVX-512's do), so the same data gives a NaN loss on one machine and a trained model on another.
    """
    for split, array in (("training images", data.train_images), ("training masks", data.train_masks),
                         ("validation images", data.val_images), ("validation masks", data.val_masks)):
        bad = np.flatnonzero(~np.isfinite(np.asarray(array)).reshape(len(array), -1).all(axis=1))
        if bad.size:
            return (f"the {split} hold NaN or infinite values ({bad.size} image(s), the first at index {bad[0]}); "
                    "replace or remove those images")
    return None


def load_dataset(
    source: str | Path = SYNTHETIC,
    image_size: int = 64,
    channels: int = 3,
    seed: int = 0,
    val_fraction: float = 0.2,
    limit: int | None = None,
    synthetic_count: int = 320,
    progress: bool = False,
    test_fraction: float = 0.0,
) -> Dataset:
    """The built-in dataset (``"synthetic"``) or a folder with ``images/`` and ``masks/`` (and
    perhaps ``test/``), split into train / validation / test, the same for a seed."""
    for key, fraction, low in (("val_fraction", val_fraction, 0), ("test_fraction", test_fraction, -1)):
        if not low < fraction < 1:
            raise DatasetError(f"{key}: must be between 0 and 1, got {fraction}")
    if val_fraction + test_fraction >= 1:
        raise DatasetError(f"val_fraction + test_fraction must leave images to train on, got {val_fraction} + {test_fraction}")
    test = None
    if str(source) == SYNTHETIC:
        images, masks = synthetic(limit or synthetic_count, image_size, channels, seed, progress)
        name, notes = f"synthetic(seed={seed})", ()
    else:
        images, masks, notes = load_folder(source, image_size, channels, limit, progress)
        name = Path(source).name
        if (Path(source) / "test").is_dir():  # the folder's own test split: nothing is held out of the rest
            test, test_fraction = load_folder(Path(source) / "test", image_size, channels, None, progress)[:2], 0.0
    return _split(images, masks, name, seed, val_fraction, test_fraction, notes, test)


def _split(images, masks, name, seed, val_fraction, test_fraction, notes, test=None) -> Dataset:
    """Test first, then validation, then train, from one permutation: with no test fraction the
    validation split is the one earlier versions drew for the same seed."""
    needed = 2 + (test_fraction > 0)
    if len(images) < needed:
        raise DatasetError(f"{name}: {len(images)} image pair(s) is too few to split into train, validation"
                           f"{' and test' if needed == 3 else ''}; add more")
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = min(max(1, round(len(images) * test_fraction)), len(images) - 2) if test_fraction > 0 else 0
    held, order = order[:n_test], order[n_test:]
    n_val = min(max(1, round(len(images) * val_fraction)), len(order) - 1)
    val, train = order[:n_val], order[n_val:]
    test_images, test_masks = test if test is not None else (images[held], masks[held])
    return Dataset(images[train], masks[train], images[val], masks[val], name, tuple(notes), test_images, test_masks)


def save_arrays(data: Dataset, path) -> None:
    """Write ``data`` as one ``.npz`` (what a search hands its worker processes)."""
    empty = np.zeros((0, *data.train_images.shape[1:]), np.float32), np.zeros((0, *data.train_masks.shape[1:]), np.float32)
    test_images, test_masks = (data.test_images, data.test_masks) if data.has_test else empty
    np.savez(path, train_images=data.train_images, train_masks=data.train_masks, val_images=data.val_images,
             val_masks=data.val_masks, test_images=test_images, test_masks=test_masks, name=np.array(data.name))


def load_arrays(path) -> Dataset:
    """The :class:`Dataset` :func:`save_arrays` wrote (files without a test split load without one)."""
    with np.load(path) as arrays:
        test = (arrays["test_images"], arrays["test_masks"]) if "test_images" in arrays.files else (None, None)
        return Dataset(arrays["train_images"], arrays["train_masks"], arrays["val_images"], arrays["val_masks"],
                       str(arrays["name"]), (), *test)


# -- folders ----------------------------------------------------------------------------------
def load_folder(path, image_size, channels=3, limit=None, progress=False):
    """Read matching ``images/`` and ``masks/`` files; returns (images, masks, warnings)."""
    pairs = find_pairs(path)[:limit]
    images = np.empty((len(pairs), image_size, image_size, channels), np.float32)
    masks = np.empty((len(pairs), image_size, image_size, 1), np.float32)
    for index, (image_path, mask_path) in enumerate(_progress(pairs, progress, f"reading {Path(path).name}")):
        images[index] = read_image(image_path, image_size, channels)
        masks[index] = read_mask(mask_path, image_size)
    empty = [image.name for (image, _), mask in zip(pairs, masks) if not mask.any()]
    notes = [f"{len(empty)} of {len(pairs)} masks are all background (e.g. {empty[0]}); Dice stays defined"] if empty else []
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return images, masks, notes


def find_pairs(path) -> list[tuple[Path, Path]]:
    """(image, mask) paths matched by file stem, sorted; ``DatasetError`` says what is missing."""
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"--data {root}: no such folder; give a folder with images/ and masks/, or 'synthetic'")
    if not root.is_dir():
        raise DatasetError(f"--data {root}: not a folder; give a folder with images/ and masks/, or 'synthetic'")
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise DatasetError(f"--data {root}: no {sub}/ folder; put images in images/ and masks with the same names in masks/")
    images = _image_files(root / "images")
    if not images:
        raise DatasetError(f"--data {root}: images/ holds no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files")
    masks = {file.stem: file for file in _image_files(root / "masks")}
    missing = [file.name for file in images if file.stem not in masks]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DatasetError(
            f"--data {root}: no mask in masks/ for {', '.join(missing[:3])}{more}; add masks with the same file names"
        )
    return [(file, masks[file.stem]) for file in images]


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))


def read_image(path, size: int | None, channels: int = 3) -> np.ndarray:
    """An image file as float32 (size, size, channels) in [0, 1]; any bit depth, gray/RGB/RGBA."""
    array = _to_unit_float(_open(path))
    if array.ndim == 2:
        array = array[..., None]
    array = array[..., :3]  # drop alpha
    if channels == 1:
        array = array.mean(axis=-1, keepdims=True)
    elif array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return _resize(array, size, "bilinear") if size else array


def read_mask(path, size: int | None, threshold: float = 0.5) -> np.ndarray:
    """A mask file as float32 (size, size, 1) of 0/1: nearest-neighbour resize, then a threshold."""
    array = _to_unit_float(_open(path))
    if array.ndim == 3:
        array = array[..., :3].max(axis=-1)
    array = _resize(array[..., None], size, "nearest") if size else array[..., None]
    return (array > threshold).astype(np.float32)


def _open(path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            _check_pixels(path, image.size)
            image.load()
            if image.mode in ("P", "PA", "CMYK", "YCbCr", "LA"):
                image = image.convert("RGBA" if "A" in image.mode else "RGB")
            array = np.asarray(image)
    except Image.DecompressionBombError:  # PIL's own limit, from the header, before nas-lite's check
        raise DatasetError(f"{path}: too many pixels to read; {TOO_LARGE}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{path}: cannot read this image ({error}); replace or remove the file") from None
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DatasetError(f"{path}: holds NaN or infinite pixel values, which would make the loss NaN; replace or remove the file")
    return array


TOO_LARGE = f"nas-lite reads images up to {MAX_SIDE}x{MAX_SIDE} pixels: downscale it (it is resized to the model's input anyway)"


def _check_pixels(path, size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_SIDE * MAX_SIDE:
        raise DatasetError(f"{path}: {width}x{height} pixels; {TOO_LARGE}")


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        top = 255.0 if array.max(initial=0) <= 255 and array.dtype.itemsize == 1 else float(np.iinfo(array.dtype).max)
        if array.dtype.itemsize > 1 and array.max(initial=0) <= 255 and array.dtype != np.uint16:
            top = 255.0  # 32-bit "I" images that hold 8-bit values
        return array.astype(np.float32) / top
    array = array.astype(np.float32)
    return array / array.max() if array.max(initial=0) > 1 else array


def resize_images(images, size: int, method: str = "bilinear") -> np.ndarray:
    """(N, H, W, C) float32 images (masks: ``method="nearest"``) at ``size`` x ``size``; as they are when they have that size."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([_resize(image, size, method) for image in images]).reshape(len(images), size, size, images.shape[-1])


def training_split_at(data, size: int):
    """``data`` with its training images and masks at ``size`` x ``size``, for a candidate of another
    input size (``--search-input-size``). The validation and test splits keep the data's size: the
    candidate's predictions are resized back to it, so candidates of any size are scored on the same masks."""
    if data.train_images.shape[1] == size:
        return data
    changes = dict(train_images=resize_images(data.train_images, size), train_masks=resize_images(data.train_masks, size, "nearest"))
    return dataclasses.replace(data, **changes) if dataclasses.is_dataclass(data) else SimpleNamespace(**{**vars(data), **changes})


def _resize(array: np.ndarray, size: int, method: str) -> np.ndarray:
    from PIL import Image

    if array.shape[:2] == (size, size):
        return array.astype(np.float32)
    resample = Image.Resampling.BILINEAR if method == "bilinear" else Image.Resampling.NEAREST
    planes = [np.asarray(Image.fromarray(array[..., c]).resize((size, size), resample)) for c in range(array.shape[-1])]
    return np.stack(planes, axis=-1).astype(np.float32)


PROGRESS_DELAY = 0.5  # seconds before a bar appears: a quick load shows none


def _progress(items, enabled, description):
    """``items``, with a bar (count, elapsed, ETA) on stderr when ``enabled`` and the load lasts."""
    if not enabled:
        return items
    from tqdm import tqdm

    # disable=None: no bar where stderr is not a terminal (a log, a pipe), so errors stay one clean line
    return tqdm(items, desc=description, unit="img", file=sys.stderr, leave=False, disable=None, delay=PROGRESS_DELAY)


# -- the built-in dataset ---------------------------------------------------------------------
def synthetic(count: int, image_size: int = 64, channels: int = 3, seed: int = 0,
              progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``count`` generated scenes; image ``i`` depends only on ``(seed, i, image_size)``. With
    ``progress``, a bar on a terminal's stderr while they generate.

    Targets (mask 1) are speckled blobs and thin curved filaments; distractors (mask 0) are flat
    rectangles and rings of the same brightness, so brightness alone does not separate them. A
    textured background, uneven light and noise make it harder; objects may occlude each other.
    """
    images = np.empty((count, image_size, image_size, channels), np.float32)
    masks = np.empty((count, image_size, image_size, 1), np.float32)
    for index in _progress(range(count), progress, "generating data"):
        image, mask = _scene(np.random.default_rng([seed, index]), image_size)
        images[index] = image.mean(axis=-1, keepdims=True) if channels == 1 else image
        masks[index, ..., 0] = mask
    return images, masks


def _scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = _background(rng, size, y, x)
    mask = np.zeros((size, size), np.float32)
    objects = [("blob", 1)] * rng.integers(1, 4) + [("filament", 1)] * rng.integers(1, 3)
    objects += [("rectangle", 0)] * rng.integers(1, 3) + [("ring", 0)] * rng.integers(0, 3)
    for kind, label in rng.permutation(np.array(objects, dtype=object)):
        region = SHAPES[kind](rng, y, x, size)
        tint = rng.uniform(0.2, 0.4) * np.array([1.0, rng.uniform(0.7, 1.0), rng.uniform(0.5, 0.9)], np.float32)
        texture = 1 + (rng.uniform(-0.35, 0.35, (size, size)) if kind == "blob" else np.zeros((size, size)))
        image = np.where(region[..., None], image + tint * texture[..., None], image)
        mask = np.where(region, float(label), mask)
    light = 0.55 + 0.45 * _gradient(rng, y, x)
    image = image * light[..., None] + rng.normal(0, rng.uniform(0.02, 0.07), image.shape)
    return np.clip(image, 0, 1), mask


def _background(rng, size, y, x):
    coarse = rng.uniform(0, 1, (4, 4, 3)).astype(np.float32)
    texture = _resize(coarse, size, "bilinear")
    waves = 0.05 * np.sin(2 * np.pi * (rng.uniform(2, 6) * x + rng.uniform(2, 6) * y) + rng.uniform(0, 6.3))
    return 0.2 + 0.2 * texture + waves[..., None]


def _gradient(rng, y, x):
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    return (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)


def _rotated(rng, y, x):
    cy, cx, theta = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0, np.pi)
    u = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
    v = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
    return u, v


def _blob(rng, y, x, size):
    u, v = _rotated(rng, y, x)
    a, b = rng.uniform(0.04, 0.14, 2)
    wobble = 1 + 0.15 * np.sin(rng.integers(3, 7) * np.arctan2(v, u) + rng.uniform(0, 6.3))
    return (u / a) ** 2 + (v / b) ** 2 <= wobble


def _rectangle(rng, y, x, size):
    u, v = _rotated(rng, y, x)
    a, b = rng.uniform(0.04, 0.14, 2)
    return (np.abs(u) <= a) & (np.abs(v) <= b)


def _ring(rng, y, x, size):
    u, v = _rotated(rng, y, x)
    radius = np.sqrt((u / rng.uniform(0.8, 1.2)) ** 2 + v ** 2)
    r, width = rng.uniform(0.06, 0.16), rng.uniform(1.0, 2.5) / size
    return np.abs(radius - r) <= width


def _filament(rng, y, x, size):
    """A thin quadratic Bezier curve, 1 to 3 pixels wide."""
    points = rng.uniform(0.05, 0.95, (3, 2))
    t = np.linspace(0, 1, 48)[:, None]
    curve = (1 - t) ** 2 * points[0] + 2 * (1 - t) * t * points[1] + t ** 2 * points[2]
    distance = np.min((y[None] - curve[:, 0, None, None]) ** 2 + (x[None] - curve[:, 1, None, None]) ** 2, axis=0)
    return np.sqrt(distance) <= rng.uniform(0.5, 1.5) / size


SHAPES = {"blob": _blob, "filament": _filament, "rectangle": _rectangle, "ring": _ring}
