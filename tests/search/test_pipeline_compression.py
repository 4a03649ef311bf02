"""search.pipeline's compress step: a spec's channel pruning and low rank apply after training, and the
untrained costs see the same shapes."""

import pytest

from search.pipeline import Stopwatch, Untrained, compress, model_costs, train
from space.spec import uniform


@pytest.mark.slow  # trains; the default tier checks the step's parts in tests/evaluators/test_structured.py
def test_training_a_compressed_spec_returns_the_compressed_fine_tuned_model_and_untrained_costs_agree():
    from evaluators.data import load_dataset
    from space.model import build, static_costs

    data = load_dataset("synthetic", 32, 3, seed=0, limit=16)
    spec = uniform("standard", depth=3, base_width=4, input_size=32, channel_keep=0.5, rank_fraction=0.5)
    training = dict(batch_size=8, seed=0, learning_rate=2e-3, schedule="cosine", fine_tune_epochs=1)
    clock = Stopwatch()
    trained = train(spec, data, 1, training, clock)
    assert static_costs(trained.model).macs < static_costs(build(spec)).macs / 2
    assert trained.history.epochs == 2 and trained.history.checkpoint.epochs == 1  # the fine-tune is not a training epoch
    assert trained.info["compression"]["fine_tune_epochs"] == 1 and "compress" in clock.phases
    recorded = {}
    untrained = Untrained(spec, data.train_images, None, None, clock, record=lambda **figures: recorded.update(figures))
    assert untrained.tflite and recorded["macs"] == model_costs(spec, trained.model)["macs"]
    assert compress(spec.replace(channel_keep=1.0, rank_fraction=1.0), trained, data, training, clock) is trained  # off


def test_the_untrained_costs_of_a_compressed_spec_are_those_of_its_compressed_shapes():
    import numpy as np

    from space.model import build, static_costs

    spec = uniform("standard", depth=3, base_width=4, input_size=32, channel_keep=0.5, rank_fraction=0.5)
    recorded = {}
    calibration = np.zeros((1, 32, 32, 3), np.float32)
    untrained = Untrained(spec, calibration, None, None, Stopwatch(), record=lambda **figures: recorded.update(figures))
    assert untrained.size_kb > 0 and recorded["macs"] < static_costs(build(spec)).macs / 2
    trained = object()
    assert compress(spec.replace(channel_keep=1.0, rank_fraction=1.0), trained, None, {}, Stopwatch()) is trained
