"""--search-input-size: a candidate of another input size trains and runs at its size, and its Dice
is taken at the data's size (predictions resized back), on the same masks as every other candidate."""

import numpy as np

from evaluators.accuracy import dice_iou, evaluate_tflite, predict_keras, predict_tflite
from evaluators.distill import Teacher
from evaluators.structured import compress
from evaluators.train import fit_candidate
from space import _tf
from space.convert import to_tflite
from space.spec import QuantSpec, uniform
from tests.evaluators.conftest import rectangles

DATA_SIZE, MODEL_SIZE = 32, 16


def test_a_candidate_of_another_size_trains_at_it_and_is_scored_at_the_datas_size():
    data = rectangles(count=24, size=DATA_SIZE, val=8)
    spec = uniform("standard", 3, base_width=4, input_size=MODEL_SIZE)
    teacher = Teacher(targets=data.train_masks)  # targets of a teacher at the data's size
    model, history, _ = fit_candidate(spec, data, 1, batch_size=8, teacher=teacher)
    assert model.input_shape[1:3] == (MODEL_SIZE, MODEL_SIZE)
    assert np.isfinite(history.val_dice[-1])
    tflite = to_tflite(model, QuantSpec("int8", calibration_images=8), data.train_images)  # calibrated at the data's size
    assert predict_tflite(tflite, data.val_images).shape == (8, DATA_SIZE, DATA_SIZE, 1)
    assert len(evaluate_tflite(tflite, data)["dice_per_image"]) == 8


def test_a_coarse_model_is_scored_on_the_original_masks():
    keras = _tf.keras()
    data = rectangles(count=16, size=DATA_SIZE, val=16)
    images = np.repeat(data.val_masks, 3, axis=-1)  # a perfect segmenter of these is the identity
    inputs = keras.Input((MODEL_SIZE, MODEL_SIZE, 3))
    copy = keras.Model(inputs, keras.layers.Lambda(lambda x: x[..., :1])(inputs))  # the first channel, at 16x16
    for probabilities in (predict_keras(copy, images), predict_tflite(to_tflite(copy), images)):
        assert probabilities.shape == data.val_masks.shape
        dice, _ = dice_iou(probabilities, data.val_masks)
        assert 0.85 < dice < 1  # the 16x16 round trip blurs the edges a little, nothing more


def test_a_pruned_and_factorised_candidate_of_another_size_fine_tunes_at_its_size():
    data = rectangles(count=16, size=DATA_SIZE, val=8)
    spec = uniform("standard", 3, base_width=8, input_size=MODEL_SIZE, channel_keep=0.5, rank_fraction=0.5)
    model, history, _ = fit_candidate(spec, data, 1, batch_size=8)
    compressed, combined, info = compress(spec, model, data, history, batch_size=8, seed=0)
    assert compressed.input_shape[1:3] == (MODEL_SIZE, MODEL_SIZE)
    assert info["fine_tune_epochs"] == 1 and np.isfinite(combined.val_dice[-1])
    assert predict_keras(compressed, data.val_images).shape == (8, DATA_SIZE, DATA_SIZE, 1)
