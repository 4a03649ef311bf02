"""Dice and IoU of a model: the converted TFLite model run in LiteRT, and the float Keras model.

The search's accuracy objective is the Dice of the *converted, quantized* TFLite model on the
validation split; the Keras model's Dice is kept beside it to show what quantization cost.
Only numpy and LiteRT are needed to run a TFLite model (:func:`predict_tflite`), so this module
imports TensorFlow only inside :func:`evaluate_keras`.
"""

from __future__ import annotations

import io

import numpy as np

TFLITE_IDENTIFIER = b"TFL3"


# -- metrics ------------------------------------------------------------------------------------
def dice_iou(probabilities, masks, threshold: float = 0.5) -> tuple[float, float]:
    """Mean Dice and IoU over images of ``probabilities > threshold`` against 0/1 ``masks``.

    Each image is scored on its own, then the scores are averaged. An image whose truth and
    prediction are both empty scores 1 (nothing to find, nothing found).
    """
    dice, iou = dice_iou_per_image(probabilities, masks, threshold)
    return float(dice.mean()), float(iou.mean())


def dice_iou_per_image(probabilities, masks, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Dice and IoU of every image, shape (N,) each; see :func:`dice_iou`."""
    predicted = np.asarray(probabilities) > threshold
    truth = np.asarray(masks) > 0.5
    if predicted.shape != truth.shape:
        raise ValueError(f"probabilities {predicted.shape} and masks {truth.shape} must have the same shape")
    axes = tuple(range(1, predicted.ndim))
    overlap = np.logical_and(predicted, truth).sum(axis=axes).astype(np.float64)
    total = predicted.sum(axis=axes) + truth.sum(axis=axes).astype(np.float64)
    union = total - overlap
    empty = total == 0
    dice = np.where(empty, 1.0, 2 * overlap / np.maximum(total, 1))
    iou = np.where(empty, 1.0, overlap / np.maximum(union, 1))
    return dice, iou


def bootstrap_interval(per_image, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean over images: how far the mean Dice could move
    with another draw of images of the same kind. Seeded, so the same scores give the same interval."""
    scores = np.asarray(per_image, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no scores to bootstrap")
    draws = np.random.default_rng(seed).integers(0, scores.size, (resamples, scores.size))
    means = scores[draws].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


# -- TFLite in LiteRT ---------------------------------------------------------------------------
def interpreter(model_bytes: bytes, threads: int = 2):
    """A LiteRT interpreter (``ai_edge_litert``, else ``tflite_runtime``) with tensors allocated.

    ``ValueError`` when the bytes are not a TFLite model or the runtime rejects them.
    """
    from evaluators.runtime import open_interpreter

    check_tflite(model_bytes)
    try:
        runner = open_interpreter(model_bytes, threads)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"LiteRT cannot load this model: {str(error).strip().splitlines()[0]}") from None
    return runner


def check_tflite(model_bytes: bytes, name: str = "model") -> None:
    """``ValueError`` unless the bytes carry the TFLite file identifier."""
    if len(model_bytes) < 8 or bytes(model_bytes[4:8]) != TFLITE_IDENTIFIER:
        raise ValueError(f"{name} is not a TFLite model (no 'TFL3' identifier); pass a .tflite file")


def input_shape(runner) -> tuple[int, int, int]:
    """(height, width, channels) of the image input of an interpreter."""
    _, height, width, channels = runner.get_input_details()[0]["shape"]
    return int(height), int(width), int(channels)


def predict_tflite(model_bytes: bytes, images, threads: int = 2) -> np.ndarray:
    """Probabilities, float32 (N, H, W, 1), of a segmentation TFLite model on float images in [0, 1].

    Integer-input models get their inputs quantized with the model's own input scale and zero
    point; integer outputs are dequantized the same way. Images run one at a time (batch 1).
    Images of another size than the model's input run at its size: see :func:`at_model_size`.
    """
    runner = interpreter(model_bytes, threads)
    return at_model_size(lambda inputs: run_interpreter(runner, inputs), input_shape(runner)[0], images)


def at_model_size(predict, model_size: int, images) -> np.ndarray:
    """``predict`` on ``images`` resized (bilinear) to ``model_size``, its probabilities resized back
    to the images' size: a candidate of another input size (``--search-input-size``) is scored on the
    data's own masks, as every other candidate is."""
    from evaluators.data import resize_images

    images = np.asarray(images, dtype=np.float32)
    return resize_images(predict(resize_images(images, model_size)), images.shape[1])


def run_interpreter(runner, images) -> np.ndarray:
    """:func:`predict_tflite` with an interpreter made by :func:`interpreter` (reuse it for many calls)."""
    source, target = runner.get_input_details()[0], runner.get_output_details()[0]
    images = np.asarray(images, dtype=np.float32)
    expected = tuple(int(v) for v in source["shape"][1:])
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(f"images {images.shape[1:]} do not match the model input {expected}; resize them first")
    outputs = []
    for image in images:
        runner.set_tensor(source["index"], _quantize(image[None], source))
        runner.invoke()
        outputs.append(_dequantize(runner.get_tensor(target["index"]), target))
    return np.concatenate(outputs).astype(np.float32)


def _quantize(values: np.ndarray, detail) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    limits = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), limits.min, limits.max).astype(dtype)


def _dequantize(values: np.ndarray, detail) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.integer):
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * scale


# -- scores of a model on a dataset -------------------------------------------------------------
SPLITS = ("val", "test")


def evaluate_tflite(model_bytes: bytes, data, threads: int = 2, threshold: float = 0.5, split: str = "val") -> dict:
    """The TFLite model's scores on one split of ``data`` (``val`` or ``test``): mean ``dice`` and
    ``iou``, ``dice_per_image`` (rounded to 4 places) and ``dice_ci95`` (:func:`bootstrap_interval`)."""
    if split not in SPLITS:
        raise ValueError(f"split: unknown {split!r}; choose one of {', '.join(SPLITS)}")
    images, masks = getattr(data, f"{split}_images"), getattr(data, f"{split}_masks")
    if images is None or len(images) == 0:
        raise ValueError(f"the data has no {split} images")
    dice, iou = dice_iou_per_image(predict_tflite(model_bytes, images, threads), masks, threshold)
    return {"dice": float(dice.mean()), "iou": float(iou.mean()), "dice_per_image": [round(float(d), 4) for d in dice],
            "dice_ci95": list(bootstrap_interval(dice))}


def predict_keras(model, images, batch_size: int = 16) -> np.ndarray:
    """Probabilities of a Keras model in inference mode, float32 (N, H, W, 1), at the images' size
    (see :func:`at_model_size`)."""
    def predict(inputs):
        batches = [model(inputs[i:i + batch_size], training=False) for i in range(0, len(inputs), batch_size)]
        return np.concatenate([np.asarray(batch) for batch in batches]).astype(np.float32)

    return at_model_size(predict, model.input_shape[1], images)


def evaluate_keras(model, data, threshold: float = 0.5) -> dict[str, float]:
    """``{"dice", "iou"}`` of the float Keras model on the validation split."""
    dice, iou = dice_iou(predict_keras(model, data.val_images), data.val_masks, threshold)
    return {"dice": dice, "iou": iou}


def score(model, model_bytes: bytes, data, threads: int = 2) -> dict[str, float]:
    """TFLite ``dice``/``iou`` beside the Keras model's ``float_dice``/``float_iou``."""
    tflite, keras = evaluate_tflite(model_bytes, data, threads), evaluate_keras(model, data)
    return {**tflite, "float_dice": keras["dice"], "float_iou": keras["iou"]}


# -- preview images -----------------------------------------------------------------------------
def preview_pngs(images, masks, probabilities, count: int = 3, threshold: float = 0.5) -> list[tuple[bytes, bytes, bytes]]:
    """``(input_png, truth_png, prediction_png)`` for the first ``count`` images, as PNG bytes."""
    previews = []
    for image, mask, probability in list(zip(images, masks, probabilities))[:count]:
        previews.append((
            png_bytes(image),
            png_bytes(np.asarray(mask) > 0.5),
            png_bytes(np.asarray(probability) > threshold),
        ))
    return previews


def png_bytes(array) -> bytes:
    """A float [0, 1] or boolean (H, W[, C]) array as PNG bytes (gray, or RGB for 3 channels)."""
    buffer = io.BytesIO()
    to_pil(array).save(buffer, format="PNG")
    return buffer.getvalue()


def to_pil(array):
    from PIL import Image

    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    pixels = np.clip(np.round(array * 255), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)  # uint8 (H, W) -> "L", (H, W, 3) -> "RGB"
