"""Structured channel pruning and low-rank factorisation rebuild a smaller model that converts and runs.

Tiny models (32x32, base width 8, depth 3), random seeded weights: what is checked is the structure
(channels, MACs) and the arithmetic (kept filters, SVD), not accuracy.
"""

import numpy as np
import pytest

from evaluators import structured
from evaluators.accuracy import predict_keras, predict_tflite
from evaluators.latency_model import read_ops, totals
from space.convert import to_tflite
from space.model import build, static_costs
from space.spec import QUANT_MODES, CandidateSpec, QuantSpec, StageSpec, uniform
from space.blocks import keras

SIZE = 32
IMAGES = np.random.default_rng(0).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32)
# Every kind of coupling at once: plain convs, grouped convs (per-group counts), Fire's concatenation,
# ShuffleNet's Add and channel shuffle (pinned), transposed convs and the decoder's concatenations.
MIXED = CandidateSpec(
    encoder=(StageSpec(), StageSpec("group", 2), StageSpec("fire")), bottleneck=StageSpec("shuffle", 2),
    decoder=(StageSpec("depthwise"), StageSpec("group", 4), StageSpec()), base_width=8, input_size=SIZE,
)


def conv_channels(tflite: bytes) -> list[int]:
    return [op.output_shape[-1] for op in read_ops(tflite) if op.op in ("CONV_2D", "TRANSPOSE_CONV", "DEPTHWISE_CONV_2D")]


def with_random_batchnorm(model):
    """Non-trivial BatchNorm statistics, so that slicing them wrongly shows in the outputs."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    return model


@pytest.fixture(scope="module")
def mixed():
    return with_random_batchnorm(build(MIXED, seed=0))


@pytest.fixture(scope="module")
def mixed_pruned(mixed):
    return structured.prune_channels(mixed, 0.5)


# -- channel pruning --------------------------------------------------------------------------------
def test_the_pruned_tflite_has_fewer_channels_in_its_convs_and_fewer_macs(mixed, mixed_pruned):
    pruned, info = mixed_pruned
    before, after = to_tflite(mixed), to_tflite(pruned)
    channels_before, channels_after = conv_channels(before), conv_channels(after)
    assert len(channels_before) == len(channels_after)  # the same ops, narrower
    assert all(a <= b for a, b in zip(channels_after, channels_before))
    assert sum(channels_after) < 0.75 * sum(channels_before)
    assert totals(read_ops(after))["macs"] < 0.5 * totals(read_ops(before))["macs"]
    assert static_costs(pruned).macs == totals(read_ops(after))["macs"]  # what the search records is what runs
    assert info["filters_after"] < info["filters_before"] and info["keep"] == 0.5


def test_layers_the_structure_forbids_keep_their_filters_and_say_why(mixed, mixed_pruned):
    pruned, info = mixed_pruned
    assert info["pinned"]["mask"] == "the model's output"
    shuffled = [name for name, why in info["pinned"].items() if "Reshape" in why]
    assert shuffled and all("gconv1" in name for name in shuffled)  # the convs before a channel shuffle
    for name in shuffled:
        assert pruned.get_layer(name).filters == mixed.get_layer(name).filters
    for layer in pruned.layers:
        if structured.is_plain_conv(layer) and layer.groups > 1:
            assert layer.filters % layer.groups == 0 and layer.input_shape[-1] % layer.groups == 0


def test_each_conv_keeps_its_filters_of_largest_l1_norm_and_the_next_layer_the_matching_inputs():
    inputs = keras.Input((8, 8, 2))
    hidden = keras.layers.Conv2D(6, 3, padding="same", name="first")(inputs)
    outputs = keras.layers.Conv2D(1, 1, name="last")(keras.layers.ReLU(name="relu")(hidden))
    model = keras.Model(inputs, outputs)
    kernel, bias = model.get_layer("first").get_weights()
    scale = np.array([0.1, 3.0, 0.2, 2.0, 1.0, 0.3], np.float32)  # filters 1, 3, 4 are the largest
    kernel = np.sign(kernel) * (np.abs(kernel) + 0.01) * scale / np.abs(kernel).sum(axis=(0, 1, 2)).max()
    model.get_layer("first").set_weights([kernel, bias + np.arange(6)])
    pruned, _ = structured.prune_channels(model, 0.5)
    kept = [1, 3, 4]
    np.testing.assert_array_equal(pruned.get_layer("first").get_weights()[0], kernel[..., kept])
    np.testing.assert_array_equal(pruned.get_layer("first").get_weights()[1], (bias + np.arange(6))[kept])
    np.testing.assert_array_equal(pruned.get_layer("last").get_weights()[0], model.get_layer("last").get_weights()[0][:, :, kept])
    hidden_of = lambda m: keras.Model(m.input, m.get_layer("first").output)(np.ones((1, 8, 8, 2), np.float32)).numpy()  # noqa: E731
    np.testing.assert_allclose(hidden_of(pruned), hidden_of(model)[..., kept], rtol=1e-6)


def test_the_inputs_of_an_add_are_pruned_as_one_set():
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(8, 1, name="b")(a)
    merged = keras.layers.Add(name="add")([a, b])
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, name="out")(merged))
    pruned, info = structured.prune_channels(model, 0.5)
    assert pruned.get_layer("a").filters == pruned.get_layer("b").filters == 4 and not info["pinned"].get("a")
    scores = structured.importance(model.get_layer("a")) + structured.importance(model.get_layer("b"))
    kept = sorted(np.argsort(-scores)[:4])
    np.testing.assert_array_equal(pruned.get_layer("b").get_weights()[0], model.get_layer("b").get_weights()[0][:, :, kept][..., kept])


def test_groups_that_would_come_out_uneven_keep_their_inputs_and_the_model_still_computes():
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(16, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(16, 3, padding="same", name="b")(inputs)
    first = keras.layers.Conv2D(16, 3, padding="same", groups=2, name="first")(a)  # a: 2 segments of 8
    both = keras.layers.Concatenate(name="both")([a, b])  # a fills group 0 of "second", b group 1
    second = keras.layers.Conv2D(16, 3, padding="same", groups=2, name="second")(both)
    merged = keras.layers.Concatenate(name="merged")([first, second])
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, name="out")(merged))
    pruned, info = structured.prune_channels(model, 0.3)  # a would keep 2 x 2, b 5: uneven
    assert "uneven" in info["pinned"]["a"] and "uneven" in info["pinned"]["b"]
    assert pruned.get_layer("first").filters == pruned.get_layer("second").filters == 4  # 2 per group
    full = structured.prune_channels(model, 1.0)[0]
    images = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    hidden = lambda m: keras.Model(m.input, m.get_layer("both").output)(images).numpy()  # noqa: E731
    np.testing.assert_array_equal(hidden(pruned), hidden(full))  # a and b untouched


def test_keeping_everything_is_the_same_model(mixed):
    same, info = structured.prune_channels(mixed, 1.0)
    assert info["filters_after"] == info["filters_before"]
    np.testing.assert_array_equal(predict_keras(same, IMAGES), predict_keras(mixed, IMAGES))


@pytest.fixture(scope="module")
def mixed_compressed(mixed_pruned):
    return structured.factorize(mixed_pruned[0], 0.5)[0]


@pytest.mark.parametrize("mode", [m for m in QUANT_MODES if not QuantSpec(m).policy.trains_aware] + ["int8-io"])
def test_the_pruned_and_factorised_model_converts_in_every_quant_mode_and_runs(mixed_compressed, mode):
    quant = QuantSpec("int8", 8, "int8") if mode == "int8-io" else QuantSpec(mode, 8)
    tflite = to_tflite(mixed_compressed, quant, IMAGES)
    probabilities = predict_tflite(tflite, IMAGES)
    assert probabilities.shape == (len(IMAGES), SIZE, SIZE, 1) and np.isfinite(probabilities).all()
    if mode == "float32":
        np.testing.assert_allclose(probabilities, predict_keras(mixed_compressed, IMAGES), atol=1e-4)


def test_the_masked_training_form_computes_what_the_native_pruned_model_does(mixed_pruned):
    pruned, _ = mixed_pruned
    masked = structured.masked_form(pruned)
    assert any(isinstance(layer, structured.MaskedGroupConv2D) for layer in masked.layers)
    np.testing.assert_allclose(predict_keras(masked, IMAGES), predict_keras(pruned, IMAGES), atol=1e-5)


# -- low-rank factorisation -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def standard():
    return with_random_batchnorm(build(uniform("standard", depth=3, base_width=8, input_size=SIZE), seed=0))


def test_at_full_rank_the_factorised_model_computes_the_original(standard):
    factorised, info = structured.factorize(standard, 1.0, whole_when_costlier=False)
    assert len(info["ranks"]) == 14 and all(rank == full for rank, full in info["ranks"].values())
    assert factorised.get_layer("enc0_conv1_lowrank").filters == 8  # min(3*3*3, 8): the first conv
    reference = keras.Model(standard.input, standard.get_layer("dec0_conv2_bn").output)
    copy = keras.Model(factorised.input, factorised.get_layer("dec0_conv2_bn").output)
    np.testing.assert_allclose(copy(IMAGES).numpy(), reference(IMAGES).numpy(), atol=1e-4, rtol=1e-4)


def test_the_error_falls_as_the_rank_grows_and_so_do_the_macs(standard):
    reference = standard.get_layer("enc1_conv2_bn").output
    target = keras.Model(standard.input, reference)(IMAGES).numpy()
    errors, macs = [], []
    for fraction in (0.125, 0.5, 1.0):
        factorised, _ = structured.factorize(standard, fraction)
        output = keras.Model(factorised.input, factorised.get_layer("enc1_conv2_bn").output)(IMAGES).numpy()
        errors.append(float(np.abs(output - target).mean()))
        macs.append(static_costs(factorised).macs)
    assert errors == sorted(errors, reverse=True) and errors[0] > 10 * errors[-1] + 1e-6
    assert macs == sorted(macs) and macs[1] < static_costs(standard).macs  # half the rank saves MACs


def test_a_rank_that_would_cost_more_macs_leaves_the_layer_whole(standard):
    """Cin = Cout = C, K = 3: the pair costs r * (9C + C) against 9C * C, more above r = 0.9 C; the
    decoders' first convolutions read the skip too (Cin = 2C): r * 19C against 18C * C still saves."""
    nearly_full, info = structured.factorize(standard, 0.95)
    assert set(info["ranks"]) == {"dec2_conv1", "dec1_conv1"} and len(info["whole"]) == 12
    assert static_costs(nearly_full).macs < static_costs(standard).macs
    half, info = structured.factorize(standard, 0.5)
    assert len(info["ranks"]) == 14 and not info["whole"]  # even the first, 3 -> 8 channels: 4 * (27 + 8) < 27 * 8
    assert static_costs(half).macs < static_costs(standard).macs


def test_svd_factors_give_the_best_rank_r_approximation():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 6)).astype(np.float32)
    matrix = kernel.reshape(36, 6).astype(np.float64)
    for rank in (1, 3, 6):
        first, second = structured.svd_factors(kernel, rank)
        product = first.reshape(36, rank) @ second.reshape(rank, 6)
        singular = np.linalg.svd(matrix, compute_uv=False)
        assert np.linalg.norm(product - matrix) == pytest.approx(np.sqrt((singular[rank:] ** 2).sum()), abs=1e-4)


def test_grouped_depthwise_transposed_and_1x1_convs_are_left_as_they_are(mixed):
    _, info = structured.factorize(mixed, 0.5)
    names = set(info["ranks"])
    assert names and all(type(mixed.get_layer(n)) is keras.layers.Conv2D and mixed.get_layer(n).groups == 1 for n in names)
    assert not any(n.endswith(("_up", "_pw1", "_squeeze", "_expand1")) or "gconv" in n for n in names)
    assert "enc1_conv1" not in names  # grouped


# -- the spec's step --------------------------------------------------------------------------------
def test_compress_fine_tunes_the_shrunk_model_and_keeps_the_training_checkpoint(data):
    from evaluators.train import History

    spec = uniform("group", depth=3, groups=2, base_width=4, input_size=SIZE, channel_keep=0.5, rank_fraction=0.5)
    model = build(spec, seed=0)  # as trained: compress reads only the weights
    history = History(loss=[0.9], val_dice=[0.4], checkpoint="the training's")
    untrained, _ = structured.shrink(spec, build(spec, seed=1))
    compressed, combined, info = structured.compress(spec, model, data, history, batch_size=8, seed=0)
    assert static_costs(compressed) == static_costs(untrained)  # the untrained check times the same shapes
    assert static_costs(compressed).macs < static_costs(model).macs / 2
    assert combined.epochs == 2 and combined.val_dice[0] == 0.4 and combined.checkpoint == "the training's"
    assert info["fine_tune_epochs"] == 1 and 0 <= info["val_dice_compressed"] <= 1
    assert info["pruning"]["filters_after"] < info["pruning"]["filters_before"] and info["low_rank"]["ranks"]
    before_tuning = structured.shrink(spec, model)[0]
    assert not np.allclose(predict_keras(compressed, data.val_images), predict_keras(before_tuning, data.val_images), atol=1e-3)
    assert not any(isinstance(layer, structured.MaskedGroupConv2D) for layer in compressed.layers)  # native again
    assert np.isfinite(predict_tflite(to_tflite(compressed, QuantSpec("int8", 8), data.train_images), data.val_images)).all()
