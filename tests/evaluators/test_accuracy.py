import io

import numpy as np
import pytest
from PIL import Image

from evaluators.accuracy import bootstrap_interval, check_tflite, dice_iou, dice_iou_per_image, png_bytes, preview_pngs


def masks_of(*rows):
    return np.array(rows, np.float32)[..., None]  # (N, H, W, 1)


def test_dice_iou_on_hand_made_masks():
    truth = masks_of([[1, 1, 0, 0]], [[1, 1, 1, 1]], [[0, 0, 0, 0]], [[0, 0, 0, 0]])[:, None]
    probabilities = masks_of([[0.9, 0.2, 0.8, 0.1]], [[0.6, 0.6, 0.6, 0.6]], [[0.1, 0.4, 0.5, 0.0]], [[0.7, 0, 0, 0]])[:, None]
    dice, iou = dice_iou_per_image(probabilities, truth)
    # image 0: prediction {0, 2}, truth {0, 1}: overlap 1 -> Dice 2/4, IoU 1/3
    # image 1: perfect; image 2: both empty (0.5 is not above the threshold) -> 1; image 3: truth empty -> 0
    np.testing.assert_allclose(dice, [0.5, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(iou, [1 / 3, 1.0, 1.0, 0.0])
    mean_dice, mean_iou = dice_iou(probabilities, truth)
    assert mean_dice == pytest.approx(2.5 / 4) and mean_iou == pytest.approx((1 / 3 + 2) / 4)


def test_dice_iou_threshold_and_shape_check():
    truth = masks_of([[1, 0]])[:, None]
    assert dice_iou(masks_of([[0.4, 0.1]])[:, None], truth, threshold=0.3) == (1.0, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        dice_iou(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 5, 1)))


def test_preview_pngs_are_pngs_of_the_right_size():
    rng = np.random.default_rng(0)
    images, masks = rng.uniform(0, 1, (4, 8, 6, 3)), rng.uniform(0, 1, (4, 8, 6, 1)) > 0.5
    previews = preview_pngs(images, masks, rng.uniform(0, 1, (4, 8, 6, 1)), count=3)
    assert len(previews) == 3
    for triple in previews:
        decoded = [Image.open(io.BytesIO(png)) for png in triple]
        assert [image.format for image in decoded] == ["PNG"] * 3
        assert [image.size for image in decoded] == [(6, 8)] * 3
        assert [image.mode for image in decoded] == ["RGB", "L", "L"]
    truth = np.asarray(Image.open(io.BytesIO(previews[0][1])))
    assert set(np.unique(truth)) <= {0, 255} and np.array_equal(truth > 0, masks[0, ..., 0])
    assert Image.open(io.BytesIO(png_bytes(images[0, ..., :1]))).mode == "L"


def test_check_tflite_rejects_other_bytes():
    with pytest.raises(ValueError, match="not a TFLite model"):
        check_tflite(b"\x89PNG\r\n\x1a\n....", "picture.png")


def test_integer_io_models_get_quantized_inputs_and_dequantized_outputs(data):
    from evaluators.accuracy import predict_tflite
    from evaluators.train import train
    from space.convert import to_tflite
    from space.model import build
    from space.spec import QuantSpec, uniform

    model = build(uniform("standard", depth=3, base_width=4, input_size=32), seed=0)
    train(model, data, epochs=1, batch_size=8)
    images = data.val_images[:4]
    float_probabilities = predict_tflite(to_tflite(model), images)
    int8_io = to_tflite(model, QuantSpec("int8", calibration_images=16, io_type="int8"), data.train_images)
    probabilities = predict_tflite(int8_io, images)
    assert probabilities.dtype == np.float32 and probabilities.shape == (4, 32, 32, 1)
    assert 0 <= probabilities.min() and probabilities.max() <= 1
    assert np.abs(probabilities - float_probabilities).mean() < 0.03
    assert predict_tflite(int8_io, np.zeros((1, 16, 16, 3), np.float32)).shape == (1, 16, 16, 1)  # run at 32, resized back
    with pytest.raises(ValueError, match="do not match the model input"):
        predict_tflite(int8_io, np.zeros((1, 32, 32, 1), np.float32))


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    few, many = rng.uniform(0.5, 1.0, 25), rng.uniform(0.5, 1.0, 400)
    low, high = bootstrap_interval(few)
    assert low < few.mean() < high
    assert bootstrap_interval(few) == (low, high)  # seeded: the same scores give the same interval
    wide, narrow = high - low, np.subtract(*bootstrap_interval(many)[::-1])
    assert narrow < wide / 2.5  # about 1/sqrt(16) as wide with 16 times the images
    assert bootstrap_interval([0.7] * 10) == pytest.approx((0.7, 0.7))
    with pytest.raises(ValueError, match="no scores"):
        bootstrap_interval([])


def test_evaluate_tflite_scores_each_split_per_image_with_an_interval():
    from evaluators.accuracy import evaluate_tflite
    from evaluators.data import load_dataset
    from tests.evaluators.latency_helpers import unet_bytes

    data = load_dataset("synthetic", 32, seed=0, synthetic_count=30, test_fraction=0.2)
    tflite = unet_bytes()
    val, test = evaluate_tflite(tflite, data), evaluate_tflite(tflite, data, split="test")
    assert len(val["dice_per_image"]) == len(data.val_images) and len(test["dice_per_image"]) == len(data.test_images)
    assert val["dice"] == pytest.approx(np.mean(val["dice_per_image"]), abs=1e-4)
    assert val["dice_ci95"][0] <= val["dice"] <= val["dice_ci95"][1]
    assert val["dice_per_image"] != test["dice_per_image"]
    with pytest.raises(ValueError, match="no test images"):
        evaluate_tflite(tflite, load_dataset("synthetic", 32, seed=0, synthetic_count=10), split="test")
