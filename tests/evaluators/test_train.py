"""Training, pruning and QAT on tiny seeded data (32x32, base width 4-8, depth 3)."""

import numpy as np
import pytest

from evaluators.accuracy import evaluate_keras, evaluate_tflite, predict_keras, predict_tflite, score
from evaluators.train import (
    Checkpoint, History, TrainingError, fit_candidate, learning_rate_schedule, split_epochs, train, training_dataset,
)
from space.convert import to_tflite
from space.model import build, transfer_weights
from space.spec import CandidateSpec, QuantSpec, StageSpec, uniform
from tests.evaluators.conftest import rectangles


def tiny(kind="standard", groups=1, width=8, **kwargs):
    return uniform(kind, depth=3, groups=groups, base_width=width, input_size=32, **kwargs)


def test_training_scores_clearly_above_untrained_on_tflite_and_reports_int8(data):
    model = build(tiny(), seed=0)
    untrained = evaluate_tflite(to_tflite(model), data)
    history = train(model, data, epochs=3, batch_size=4, seed=0)
    trained = score(model, to_tflite(model), data)
    int8 = evaluate_tflite(to_tflite(model, QuantSpec("int8", calibration_images=16), data.train_images), data)
    print(f"untrained {untrained['dice']:.3f}, float {trained['dice']:.3f}, int8 {int8['dice']:.3f}")
    assert history.epochs == 3 and len(history.val_dice) == 3 and history.seconds > 0
    assert history.loss[-1] < history.loss[0]
    assert trained["dice"] > untrained["dice"] + 0.4
    assert trained["dice"] == pytest.approx(trained["float_dice"], abs=1e-6)  # float TFLite = Keras
    assert int8["dice"] == pytest.approx(trained["dice"], abs=0.05)
    assert history.val_dice[-1] == pytest.approx(trained["float_dice"], abs=1e-6)


def test_flips_move_image_and_mask_together():
    rng = np.random.default_rng(0)
    masks = (rng.uniform(0, 1, (16, 8, 8, 1)) > 0.5).astype(np.float32)
    images = np.concatenate([masks, rng.uniform(0, 1, (16, 8, 8, 2))], axis=-1).astype(np.float32)
    batches = list(training_dataset(images, masks, batch_size=16, seed=0).as_numpy_iterator())
    flipped_images, flipped_masks = batches[0]
    np.testing.assert_array_equal(flipped_images[..., :1], flipped_masks)
    originals = {m.tobytes() for m in masks}
    assert sum(m.tobytes() not in originals for m in flipped_masks) >= 4  # some were flipped


def test_training_is_seeded(data):
    runs = []
    for _ in range(2):
        model = build(tiny(width=4), seed=1)
        runs.append(train(model, data, epochs=1, batch_size=8, seed=5).loss)
    assert runs[0] == pytest.approx(runs[1], rel=1e-4)


def test_callback_sees_every_epoch_and_can_stop(data):
    seen = []

    def stop_after_two(epoch, dice):
        seen.append((epoch, dice))
        return epoch < 2

    history = train(build(tiny(width=4), seed=0), data, epochs=4, batch_size=8, callback=stop_after_two)
    assert [epoch for epoch, _ in seen] == [1, 2]
    assert history.stopped_early and history.epochs == 2
    assert [dice for _, dice in seen] == history.val_dice


def test_nan_data_raise_a_clear_error_before_training(data):
    broken = rectangles(count=24, val=8)
    broken.train_images[3, 5, 5, 0] = np.nan
    with pytest.raises(TrainingError, match=r"the training images hold NaN or infinite values \(1 image\(s\), the first at index 3\)"):
        train(build(tiny(width=4), seed=0), broken, epochs=2, batch_size=8)


def test_nan_loss_raises_a_clear_error(data):
    """A NaN added to the loss (an addition propagates NaN on every CPU, a max need not) on finite data."""
    from space import _tf

    tf, keras = _tf.tensorflow(), _tf.keras()

    class NaNLoss(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(tf.constant(float("nan")))
            return inputs

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(NaNLoss()(inputs)))
    with pytest.raises(TrainingError, match="loss became NaN at epoch 1"):
        train(model, rectangles(count=24, val=8), epochs=2, batch_size=8)


def test_cosine_schedule_warms_up_to_the_peak_then_decays_to_zero():
    schedule = learning_rate_schedule(2e-3, "cosine", steps=100)
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates[0] == pytest.approx(2e-4)  # a tenth of the peak
    assert rates[0] < rates[1] < rates[2] == pytest.approx(2e-3)  # linear warm-up over 10 steps
    assert rates[3] == pytest.approx(1e-3, rel=1e-3)  # halfway down the cosine
    assert rates[4] == pytest.approx(0.0, abs=1e-9)
    assert learning_rate_schedule(2e-3, "constant", steps=100) == 2e-3
    with pytest.raises(ValueError, match="choose cosine or constant"):
        learning_rate_schedule(2e-3, "linear", steps=100)
    with pytest.raises(ValueError, match="must be positive"):
        learning_rate_schedule(0.0, "cosine", steps=100)


def test_training_follows_the_schedule_to_its_end(data):
    model = build(tiny(width=4), seed=0)
    train(model, data, epochs=2, batch_size=8, learning_rate=2e-3, schedule="cosine")
    steps = 2 * -(-len(data.train_images) // 8)
    assert int(model.optimizer.iterations) == steps
    assert float(model.optimizer._decayed_lr("float32")) == pytest.approx(0.0, abs=1e-6)  # decayed, not constant
    constant = build(tiny(width=4), seed=0)
    train(constant, data, epochs=1, batch_size=8, learning_rate=2e-3, schedule="constant")
    assert float(constant.optimizer._decayed_lr("float32")) == pytest.approx(2e-3)


def test_an_epoch_is_the_same_whether_a_run_starts_at_it_or_passes_through_it():
    rng = np.random.default_rng(0)
    images, masks = rng.uniform(size=(10, 4, 4, 1)).astype(np.float32), (rng.uniform(size=(10, 4, 4, 1)) > 0.5).astype(np.float32)
    through = list(training_dataset(images, masks, 4, seed=3, epochs=3).as_numpy_iterator())
    started = list(training_dataset(images, masks, 4, seed=3, epochs=1, first_epoch=2).as_numpy_iterator())
    assert len(through) == 9 and len(started) == 3  # 3 batches (4, 4, 2) an epoch
    for (a, b), (c, d) in zip(through[6:], started):
        np.testing.assert_array_equal(a, c) and np.testing.assert_array_equal(b, d)
    assert not np.array_equal(through[0][0], through[3][0])  # another order each epoch


def test_training_in_stages_ends_where_one_run_ends(data):
    """2 epochs, then 2 more from the checkpoint (through bytes, as the result store keeps it),
    on a 4-epoch cosine: the weights, the step count and the final rate of one 4-epoch run."""
    whole = build(tiny(width=4), seed=0)
    one_run = train(whole, data, epochs=4, batch_size=8, seed=2)
    staged = build(tiny(width=4), seed=0)
    first = train(staged, data, epochs=2, batch_size=8, seed=2, horizon=4)
    assert float(staged.optimizer._decayed_lr("float32")) > 1e-4  # halfway: far from the end of the decay
    checkpoint = Checkpoint.from_bytes(first.checkpoint.to_bytes())
    again = build(tiny(width=4), seed=0)  # a new process would build it anew
    second = train(again, data, epochs=2, batch_size=8, seed=2, horizon=4, resume=checkpoint)
    assert checkpoint.epochs == 2 and second.checkpoint.epochs == 4
    assert int(again.optimizer.iterations) == int(whole.optimizer.iterations)
    assert float(again.optimizer._decayed_lr("float32")) == pytest.approx(0.0, abs=1e-6)
    assert first.loss + second.loss == pytest.approx(one_run.loss, rel=1e-3)
    assert second.val_dice[-1] == pytest.approx(one_run.val_dice[-1], abs=1e-3)
    for a, b in zip(again.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="end before epoch 5"):
        train(build(tiny(width=4), seed=0), data, epochs=3, batch_size=8, horizon=4, resume=checkpoint)


def test_a_stage_goes_on_in_the_live_model_without_a_new_trace_and_ends_where_one_run_ends(data):
    """In the process that trained it, a checkpoint trains on in its compiled model: the train step
    is not traced again, and weights set into the model in between (a twin's conversion) are put back."""
    whole = build(tiny(width=4), seed=0)
    one_run = train(whole, data, epochs=4, batch_size=8, seed=2)
    staged = build(tiny(width=4), seed=0)
    first = train(staged, data, epochs=2, batch_size=8, seed=2, horizon=4)
    step = staged.train_function
    assert first.checkpoint.live.model is staged
    staged.set_weights([np.zeros_like(w) for w in staged.get_weights()])
    second = train(first.checkpoint.live.model, data, epochs=2, batch_size=8, seed=2, horizon=4, resume=first.checkpoint)
    assert staged.train_function is step and step.experimental_get_tracing_count() == 1
    assert second.val_dice[-1] == pytest.approx(one_run.val_dice[-1], abs=1e-3)
    for a, b in zip(staged.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert Checkpoint.from_bytes(second.checkpoint.to_bytes()).live is None  # the store keeps arrays only


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_fit_candidate_trains_grouped_specs_in_stages(data):
    spec = tiny("group", groups=2)
    model, first, _ = fit_candidate(spec, data, 1, batch_size=8, seed=0, horizon=3)
    stored = Checkpoint.from_bytes(first.checkpoint.to_bytes())
    again, second, info = fit_candidate(spec, data, 2, batch_size=8, seed=0, horizon=3, resume=first.checkpoint)
    _, from_store, _ = fit_candidate(spec, data, 2, batch_size=8, seed=0, horizon=3, resume=stored)
    plain, whole, _ = fit_candidate(spec, data, 3, batch_size=8, seed=0)
    assert info["resumed_live"] and again is model  # the same native model, the new weights copied in
    assert first.val_dice + second.val_dice == pytest.approx(whole.val_dice, abs=2e-3)
    assert second.val_dice == pytest.approx(from_store.val_dice, abs=1e-6)
    with pytest.raises(ValueError, match="cannot be trained in stages"):
        fit_candidate(tiny(quant=QuantSpec("int8-qat")), data, 1, horizon=3)


def test_split_epochs():
    assert split_epochs(10, qat=False, pruning=True) == (10, 0)
    assert split_epochs(10, qat=True, pruning=False) == (7, 3)
    assert split_epochs(1, qat=True, pruning=False) == (0, 1)
    assert split_epochs(1, qat=True, pruning=True) == (1, 0)
    assert History([1.0], [0.5], 2.0).extend(History([0.5], [0.7], 1.0, True)).to_dict() == {
        "loss": [1.0, 0.5], "val_dice": [0.5, 0.7], "seconds": 3.0, "stopped_early": True,
    }


def test_masked_grouped_training_matches_native_training(data):
    """From the same weights, one epoch in the fast masked form = one epoch of native Conv2D(groups)."""
    spec = tiny("group", groups=2, width=4)
    masked = build(spec, grouped="masked", seed=0)
    native = transfer_weights(masked, build(spec, grouped="native"))
    train(masked, data, epochs=1, batch_size=8, seed=3)
    train(native, data, epochs=1, batch_size=8, seed=3)
    images = data.val_images[:4]
    assert np.abs(predict_keras(masked, images) - predict_keras(native, images)).max() < 1e-3
    converted = transfer_weights(masked, build(spec, grouped="native"))
    np.testing.assert_allclose(predict_keras(converted, images), predict_keras(masked, images), atol=1e-5)


def test_fit_candidate_trains_grouped_specs_masked_and_returns_the_native_model(data):
    spec = tiny("shuffle", groups=2, width=4)
    model, history, info = fit_candidate(spec, data, epochs=1, batch_size=8, seed=0)
    assert info["training_form"] == "masked" and info["transfer_max_diff"] < 1e-4
    assert not any(type(layer).__name__ == "MaskedGroupConv2D" for layer in model.layers)
    assert max(layer.groups for layer in model.layers if hasattr(layer, "groups")) == 2
    assert history.epochs == 1 and info["qat"] is False and info["sparsity"] == 0.0
    assert info["seconds"] >= history.seconds > 0


@pytest.mark.slow  # 15-30 s: the default tier stays under 15 minutes
def test_pruning_reaches_the_target_sparsity_and_converts(data):
    spec = tiny("group", groups=2, width=4, sparsity=0.5)
    model, history, info = fit_candidate(spec, data, epochs=2, batch_size=4, seed=0)
    kernels = [w.numpy() for w in model.weights if w.name.endswith(("/kernel:0", "/depthwise_kernel:0"))]
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert zeros == pytest.approx(0.5, abs=0.02) and info["sparsity"] == pytest.approx(zeros)
    assert not any("prune" in type(layer).__name__.lower() for layer in model.layers)  # stripped
    assert info["xnnpack_policy"] is False and "size only" in info["xnnpack_policy_reason"]
    probabilities = predict_tflite(to_tflite(model), data.val_images[:2])
    np.testing.assert_allclose(probabilities, predict_keras(model, data.val_images[:2]), atol=1e-4)


@pytest.mark.slow
def test_qat_of_every_block_kind_converts_to_full_integer_tflite(data):
    """One spec with every block kind, a dilation, grouped stages (trained masked) and int8 QAT."""
    stage = StageSpec
    spec = CandidateSpec(
        encoder=(stage("standard", dilation=2), stage("fire"), stage("depthwise")),
        bottleneck=stage("shuffle", groups=2),
        decoder=(stage("group", groups=2), stage("depthwise", dilation=2), stage("fire")),
        base_width=8, input_size=32, quant=QuantSpec("int8-qat", calibration_images=8, io_type="int8"),
    )
    model, history, info = fit_candidate(spec, data, epochs=2, batch_size=8, seed=0)
    assert info["qat"] is True and info["qat_epochs"] == 1 and info["qat_unannotated"] == []
    assert info["training_form"] == "masked" and info["transfer_max_diff"] < 0.05
    assert history.epochs == 2
    model_bytes = to_tflite(model, spec.quant, data.train_images)

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    dtypes = {np.dtype(tensor["dtype"]).name for tensor in interpreter.get_tensor_details()}
    assert dtypes <= {"int8", "int32"}, dtypes  # no float tensor anywhere: full integer
    tflite, keras = evaluate_tflite(model_bytes, data), evaluate_keras(model, data)
    assert tflite["dice"] == pytest.approx(keras["dice"], abs=0.05)


@pytest.mark.slow
def test_pruning_then_qat_keeps_the_sparsity(data):
    spec = tiny("group", groups=2, width=4, sparsity=0.5, quant=QuantSpec("int8-qat", calibration_images=8))
    model, history, info = fit_candidate(spec, data, epochs=3, batch_size=8, seed=0)
    assert (info["float_epochs"], info["qat_epochs"], info["qat"]) == (2, 1, True)
    assert info["sparsity"] == pytest.approx(0.5, abs=0.02)
    model_bytes = to_tflite(model, spec.quant, data.train_images)
    assert evaluate_tflite(model_bytes, data)["dice"] == pytest.approx(evaluate_keras(model, data)["dice"], abs=0.05)
