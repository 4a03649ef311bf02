"""Slow tier: training on the built-in data and on real nuclei images."""

import pytest

from evaluators.accuracy import evaluate_tflite
from evaluators.data import load_dataset
from evaluators.train import fit_candidate
from space.convert import to_tflite
from space.model import build
from space.presets import preset


@pytest.mark.slow
def test_standard_unet_does_not_solve_the_built_in_data_in_a_few_epochs():
    data = load_dataset("synthetic", 64, synthetic_count=256, seed=0)
    model, history, _ = fit_candidate(preset("unet", 64), data, epochs=4, batch_size=16, seed=0)
    dice = evaluate_tflite(to_tflite(model), data)["dice"]
    assert 0.2 < dice < 0.98, history.val_dice  # it learns something, and the task stays open


@pytest.mark.slow
def test_a_small_unet_learns_real_nuclei(small_nuclei):
    data = load_dataset(small_nuclei, 64, seed=0)
    spec = preset("unet", 64).replace(base_width=8)
    untrained = evaluate_tflite(to_tflite(build(spec, seed=0)), data)["dice"]
    model, history, _ = fit_candidate(spec, data, epochs=5, batch_size=8, seed=0)
    trained = evaluate_tflite(to_tflite(model), data)["dice"]
    assert trained > max(0.5, untrained + 0.2), (untrained, history.val_dice)
