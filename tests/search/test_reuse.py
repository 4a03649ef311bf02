"""A spec that differs from an earlier one only in post-training quantization is not trained again."""

from __future__ import annotations

import optuna
import pytest

from evaluators.data import load_dataset
from evaluators.devices import LocalDevice
from search.config import SearchConfig
from search.pipeline import latency_protocol
from search.trial import TrialContext, evaluate
from search.worker import _release_memory
from space.sampling import params_of
from space.spec import QuantSpec, uniform
from studies.storage import open_storage
from studies.store import ResultStore


@pytest.mark.slow  # 15-30 s each: the default tier stays under 15 minutes
@pytest.mark.parametrize("rungs", [None, (2, 4)])
def test_a_spec_that_differs_only_in_ptq_reuses_the_trained_model(tmp_path, rungs):
    """With rungs, the twin also keeps the training's checkpoint: its own promotion trains on from it."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = SearchConfig(storage=url, data_limit=40, image_size=32, epochs=2, batch_size=8, depths=(3,), widths=(4,),
                          threads=1, quant_modes=("float32", "int8"), rungs=rungs)
    data = load_dataset("synthetic", 32, 3, seed=0, limit=40)
    context = TrialContext(config, data, LocalDevice(threads=1), ResultStore(url), latency_protocol(1))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=open_storage(url), directions=config.directions)
    spec = uniform("depthwise", depth=3, base_width=4, input_size=32)
    for mode in ("float32", "int8"):
        study.enqueue_trial(params_of(spec.replace(quant=QuantSpec(mode)), config.space))
        trial = study.ask()
        study.tell(trial, evaluate(trial, context))
        _release_memory()  # as the worker does between trials

    first, second = study.trials
    assert [first.user_attrs["quant"], second.user_attrs["quant"]] == ["float32", "int8"]
    assert second.user_attrs["training"]["reused_from"] == first.number
    assert "train" in first.user_attrs["seconds"] and "train" not in second.user_attrs["seconds"]
    assert second.user_attrs["dice_history"] == first.user_attrs["dice_history"]
    assert second.user_attrs["float_dice"] == first.user_attrs["float_dice"]
    assert second.user_attrs["size_bytes"] < 0.9 * first.user_attrs["size_bytes"]  # really converted to int8
    # the same weights, only PTQ differs (a model halfway through its schedule, at a rung, loses more to int8)
    assert abs(second.user_attrs["dice"] - first.user_attrs["dice"]) < (0.1 if rungs else 0.05)
    with ResultStore(url, create=False) as store:
        kept = [store.checkpoint(trial._trial_id) is not None for trial in (first, second)]
    assert kept == [bool(rungs)] * 2
    assert context.trained.numbers() == {first.number, second.number}  # the twin's promotion is this worker's too


def test_a_kept_training_puts_its_weights_back_when_a_later_stage_trained_the_model_on():
    """A promotion trains on in the same model object (``evaluators.train.Live``): the rung below
    must still convert with its own weights when a twin asks for it afterwards."""
    import numpy as np

    from search.pipeline import Trained
    from search.trial import TrainedModels
    from space.model import build

    spec = uniform("standard", depth=3, base_width=4, input_size=32)
    model = build(spec, seed=0)
    kept = TrainedModels()
    kept.put(spec, Trained(model, None, {}), number=3, rung=0)
    before = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in before])  # the promotion's epochs
    trained, number = kept.get(spec.replace(quant=QuantSpec("int8")), rung=0, user=4)
    assert number == 3 and trained.model is model and kept.numbers() == {3, 4}
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    assert kept.get(spec, rung=1) is None
