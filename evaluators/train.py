"""Training: ``train(model, data, epochs) -> History`` and ``fit_candidate(spec, data, epochs)``.

``train`` fits any tf-keras segmentation model (sigmoid output) with Adam on binary cross-entropy
plus Dice loss, random horizontal and vertical flips, seeded, the learning rate warmed up and then
decayed along a cosine (or held constant). After every epoch it computes the
validation Dice (threshold 0.5, per image then averaged) and hands it to ``callback(epoch, dice)``;
a callback that returns ``False`` stops the training (the search uses it to drop hopeless trials).

``fit_candidate`` trains what a :class:`space.spec.CandidateSpec` describes and returns the model
ready for :func:`space.convert.to_tflite`: grouped convolutions are trained in their fast masked
form and copied into the native ``Conv2D(groups=g)`` model, pruning is applied when the spec
asks for sparsity, and quantization-aware training when its quant policy ``trains_aware``
(``int8-qat``).

Data: any object with float32 ``train_images``, ``train_masks``, ``val_images``, ``val_masks``
(images NHWC in [0, 1], masks (N, H, W, 1) of 0/1), such as :class:`evaluators.data.Dataset`.
TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Callable

import numpy as np

from evaluators.data import non_finite, resize_images, training_split_at
from space import _tf

EpochCallback = Callable[[int, float], "bool | None"]
QAT_FRACTION = 0.3  # share of the epochs spent on quantization-aware fine-tuning
FLOAT_TOLERANCE = 1e-4  # masked vs native float outputs
QAT_TOLERANCE = 0.05  # masked vs native QAT outputs: a rounding step may flip inside the network
CHECK_IMAGES = 4
BATCHNORM_MOMENTUM = 0.9  # PyTorch's default; see set_batchnorm_momentum
WARMUP_FRACTION = 0.1  # of a cosine schedule's steps, rising linearly from a tenth of the peak rate
PRECISIONS = ("float32", "auto", "bfloat16")  # see training_precision
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPUs whose bfloat16 convolutions oneDNN runs natively
BFLOAT16_CHANNELS = 16  # oneDNN's bfloat16 kernels block channels by 16; other counts ran 1.6-2.5x slower
BFLOAT16_TOLERANCE = 0.05  # bfloat16-trained vs its float32 copy: bfloat16 keeps 8 bits of mantissa


class TrainingError(RuntimeError):
    """Training failed in a way that more epochs will not fix (NaN loss, a broken weight transfer)."""


@dataclasses.dataclass
class History:
    """What one training run did: mean loss and validation Dice per epoch, wall time, early stop."""

    loss: list[float] = dataclasses.field(default_factory=list)
    val_dice: list[float] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    checkpoint: "Checkpoint | None" = dataclasses.field(default=None, repr=False)  # to go on training later

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def extend(self, other: "History") -> "History":
        self.loss += other.loss
        self.val_dice += other.val_dice
        self.seconds += other.seconds
        self.stopped_early = self.stopped_early or other.stopped_early
        self.checkpoint = other.checkpoint
        return self

    def to_dict(self) -> dict:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "checkpoint"}


@dataclasses.dataclass(eq=False)
class Live:
    """A run's models, still in the process that trained them (never stored): the training form
    compiled with its optimizer, and the native form it was copied into. A stage that goes on in
    them skips the build and the new trace of the train step (seconds a stage: RESULTS.md)."""

    model: object
    horizon: int
    teacher: object = None
    native: object = None  # set by fit_candidate once the weights are copied in

    def fits(self, horizon: int, teacher) -> bool:
        """Whether a stage on this ``horizon`` with this ``teacher`` trains what this model was compiled for."""
        return self.horizon == horizon and self.teacher is teacher


@dataclasses.dataclass
class Checkpoint:
    """Where a training run stopped: the weights of the model it trained (in its training form),
    the optimizer's state (its step count first) and the epochs done. Bytes for the result store;
    in the process that trained it, also its :class:`Live` models."""

    weights: list[np.ndarray]
    optimizer: list[np.ndarray]
    epochs: int
    live: Live | None = dataclasses.field(default=None, repr=False)

    def to_bytes(self) -> bytes:
        import io

        buffer = io.BytesIO()
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)} | {f"o{i}": o for i, o in enumerate(self.optimizer)}
        np.savez(buffer, epochs=self.epochs, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Checkpoint":
        import io

        with np.load(io.BytesIO(data)) as arrays:
            def ordered(prefix):
                return [arrays[f"{prefix}{i}"] for i in range(sum(name.startswith(prefix) for name in arrays.files))]

            return cls(ordered("w"), ordered("o"), int(arrays["epochs"]))


# -- the loop -----------------------------------------------------------------------------------
def train(
    model,
    data,
    epochs: int,
    batch_size: int = 8,
    seed: int = 0,
    learning_rate: float = 2e-3,
    callback: EpochCallback | None = None,
    *,
    schedule: str = "cosine",
    keras_callbacks=(),
    first_epoch: int = 0,
    horizon: int | None = None,
    resume: Checkpoint | None = None,
    teacher=None,
) -> History:
    """Train ``model`` in place for up to ``epochs`` epochs; see the module docstring.

    ``learning_rate`` is the peak of the ``schedule`` (see :func:`learning_rate_schedule`), which
    spans ``horizon`` epochs (default ``epochs``).

    ``callback(epoch, val_dice)`` gets the epoch number counted from 1 (plus ``first_epoch``, so
    that phases of one candidate number their epochs on). Epoch ``k``'s order of images and flips
    depends on the seed and ``k`` only, so training can stop after some epochs and go on later:
    ``resume`` with the run's :attr:`History.checkpoint` (and the same ``horizon``) trains on from
    where it stopped, as one run would have. ``teacher`` (:class:`evaluators.distill.Teacher`)
    adds its soft targets to the loss. ``keras_callbacks`` are passed to ``fit`` (e.g. tfmot's ``UpdatePruningStep``).
    ``TrainingError`` when the data hold NaN or infinite values (before any step) or the loss becomes NaN.
    """
    problem = non_finite(data)
    if problem:
        raise TrainingError(problem)
    if epochs < 1:
        raise ValueError(f"epochs: must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
    if resume is not None:
        first_epoch = resume.epochs
    if horizon is not None and horizon < first_epoch + epochs:
        raise ValueError(f"horizon: the schedule's {horizon} epochs end before epoch {first_epoch + epochs}")
    keras = _tf.keras()
    keras.utils.set_random_seed(seed)
    set_batchnorm_momentum(model, BATCHNORM_MOMENTUM)
    steps_per_epoch = math.ceil(len(data.train_images) / batch_size)
    masks = data.train_masks
    if teacher is not None:
        from evaluators.distill import with_targets

        masks = with_targets(data.train_masks, teacher.targets)
    dataset = training_dataset(data.train_images, masks, batch_size, seed, epochs, first_epoch)
    live = resume.live if resume is not None else None
    if live is None or live.model is not model or not live.fits(horizon or epochs, teacher):
        _compile(model, learning_rate_schedule(learning_rate, schedule, (horizon or epochs) * steps_per_epoch), teacher)
    if resume is not None:  # into the live model too: a twin's conversion may have set other weights since
        model.set_weights(resume.weights)
        model.optimizer.set_weights(resume.optimizer)  # the step count first: the schedule goes on from it
    history = History()
    monitor = _monitor_class()(data, callback, history, first_epoch, batch_size)
    start = time.perf_counter()
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0, callbacks=[*keras_callbacks, monitor])
    history.seconds = time.perf_counter() - start
    history.checkpoint = Checkpoint(model.get_weights(), model.optimizer.get_weights(), first_epoch + history.epochs,
                                    Live(model, horizon or epochs, teacher))
    return history


def _compile(model, learning_rate, teacher) -> None:
    keras = _tf.keras()
    # The legacy Adam applies one fused op per variable: tracing the train step takes 2-3x less
    # time than with the new optimizer (seconds per trial for a small model), same results.
    optimizer = keras.optimizers.legacy.Adam(learning_rate)
    # Slots made now, not inside the first traced step: a tf.function that creates variables is
    # traced twice, and one trace of a U-Net's train step costs seconds.
    optimizer._create_all_weights(model.trainable_variables)
    model.compile(optimizer=optimizer, loss=bce_dice_loss if teacher is None else teacher.loss())


def learning_rate_schedule(peak: float, schedule: str, steps: int):
    """``constant``: ``peak`` throughout. ``cosine``: a linear warm-up from ``peak / 10`` over the first
    tenth of the ``steps``, then a cosine decay to 0 at the last one.

    A trial trains for a few hundred steps and is judged by the weights it ends with: at a constant
    rate those still jump from epoch to epoch (validation Dice 0.65 then 0.72 at 128x128), and the
    search would compare the luck of the last step; the decay lets them settle.
    """
    if not peak > 0:
        raise ValueError(f"learning_rate: must be positive, got {peak}")
    if schedule == "constant":
        return peak
    if schedule != "cosine":
        raise ValueError(f"schedule: unknown {schedule!r}; choose cosine or constant")
    warmup = max(1, round(steps * WARMUP_FRACTION))
    keras = _tf.keras()
    return keras.optimizers.schedules.CosineDecay(peak / 10, max(1, steps - warmup), warmup_target=peak, warmup_steps=warmup)


def set_batchnorm_momentum(model, momentum: float) -> None:
    """Set the moving-average momentum of every BatchNormalization layer (wrapped ones too).

    Keras' default 0.99 suits long runs; a trial trains for a few hundred steps, after which its
    moving statistics would still lean on their initial values and the validation Dice (computed
    in inference mode) would understate the model, epoch after epoch.
    """
    keras = _tf.keras()
    for module in model.submodules:
        if isinstance(module, keras.layers.BatchNormalization):
            module.momentum = momentum


def training_dataset(images, masks, batch_size: int, seed: int, epochs: int = 1, first_epoch: int = 0):
    """``epochs`` epochs of batches from epoch ``first_epoch`` on: each epoch a permutation of the
    images and random horizontal and vertical flips (the same for the image and every channel of
    its mask: a teacher's targets too) drawn from ``(seed, epoch)`` alone, so an epoch is the same whether a run starts at it or passes through it."""
    tf = _tf.tensorflow()
    images, masks = np.asarray(images, np.float32), np.asarray(masks, np.float32)
    if len(images) != len(masks) or len(images) == 0:
        raise ValueError(f"train_images ({len(images)}) and train_masks ({len(masks)}) must be equally many, at least 1")
    draws = [np.random.default_rng([seed, epoch]) for epoch in range(first_epoch, first_epoch + epochs)]
    orders = np.stack([rng.permutation(len(images)) for rng in draws])
    flips = np.stack([rng.uniform(size=(len(images), 2)) < 0.5 for rng in draws])
    channels = images.shape[-1]
    images, masks = tf.constant(images), tf.constant(masks)

    def batches(order, flip):
        return tf.data.Dataset.from_tensor_slices((order, flip)).batch(batch_size)

    def gather(order, flip):
        both = tf.concat([tf.gather(images, order), tf.gather(masks, order)], axis=-1)
        both = tf.where(flip[:, 0, None, None, None], tf.reverse(both, [2]), both)
        both = tf.where(flip[:, 1, None, None, None], tf.reverse(both, [1]), both)
        return both[..., :channels], both[..., channels:]

    dataset = tf.data.Dataset.from_tensor_slices((orders, flips)).flat_map(batches)
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def bce_dice_loss(y_true, y_pred):
    """Binary cross-entropy plus (1 - soft Dice), per image."""
    tf = _tf.tensorflow()
    keras = _tf.keras()
    y_true, y_pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)  # a bfloat16 model's output too
    bce = tf.reduce_mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=[1, 2])
    overlap = tf.reduce_sum(y_true * y_pred, axis=[1, 2, 3])
    total = tf.reduce_sum(y_true + y_pred, axis=[1, 2, 3])
    return bce + 1.0 - (2.0 * overlap + 1.0) / (total + 1.0)


@functools.cache
def _monitor_class():
    keras = _tf.keras()

    class EpochMonitor(keras.callbacks.Callback):
        """Validation Dice after every epoch, the NaN check and the caller's stop decision."""

        def __init__(self, data, callback, history, first_epoch, batch_size):
            super().__init__()
            self.data, self.callback, self.history = data, callback, history
            self.first_epoch, self.batch_size = first_epoch, batch_size

        def on_epoch_end(self, epoch, logs=None):
            number = self.first_epoch + epoch + 1
            loss = float((logs or {}).get("loss", float("nan")))
            if not math.isfinite(loss):
                self.model.stop_training = True
                raise TrainingError(
                    f"loss became NaN at epoch {number}; lower the learning rate or check the data for NaN/inf values"
                )
            from evaluators.accuracy import dice_iou, predict_keras

            # Eager calls: tracing Keras' predict function costs a U-Net about a second per trial,
            # more than the few validation batches take to run op by op.
            probabilities = predict_keras(self.model, self.data.val_images, batch_size=max(self.batch_size, 32))
            dice, _ = dice_iou(probabilities, self.data.val_masks)
            self.history.loss.append(loss)
            self.history.val_dice.append(dice)
            if self.callback is not None and self.callback(number, dice) is False:
                self.history.stopped_early = True
                self.model.stop_training = True

    return EpochMonitor


# -- one candidate ------------------------------------------------------------------------------
def fit_candidate(
    spec,
    data,
    epochs: int,
    batch_size: int = 8,
    seed: int = 0,
    callback: EpochCallback | None = None,
    learning_rate: float = 2e-3,
    qat_fraction: float = QAT_FRACTION,
    schedule: str = "cosine",
    horizon: int | None = None,
    resume: Checkpoint | None = None,
    teacher=None,
    precision: str = "float32",
):
    """Train the candidate ``spec``; returns ``(model, history, info)``.

    ``horizon`` and ``resume`` (see :func:`train`) let a float candidate train in stages, each
    going on from the ``history.checkpoint`` of the one before: ``epochs`` are then the epochs of
    this stage; a checkpoint made in this process goes on in its :class:`Live` models (no build, no
    new trace). Pruning and quantization-aware training change the model between phases and are
    trained in one run (:func:`resumable`). ``teacher`` (:class:`evaluators.distill.Teacher`)
    distils a trained model into the candidate. ``precision``: see :func:`training_precision`.

    ``model`` is the native model ready for ``to_tflite(model, spec.quant, calibration)``: plain
    float, pruning stripped, or (a ``trains_aware`` mode: ``int8-qat``) quantization-aware. ``info`` is a JSON-friendly
    dict: ``training_form`` (``masked``/``native``), ``float_epochs``, ``qat_epochs``, ``qat``
    (applied or not), ``qat_unannotated`` (layers left in float), ``qat_note``, ``sparsity_target``,
    ``sparsity`` (zeros among the kernels of the returned model), ``xnnpack_policy`` and
    ``xnnpack_policy_reason``, ``transfer_max_diff`` (masked vs native outputs on a few images),
    ``resumed_live`` (a stage that went on in the live models), ``precision`` (``float32``/``bfloat16``),
    ``seconds`` (all of it: building, training, transfer).
    """
    start = time.perf_counter()
    form = training_form(spec)
    wants_qat = spec.quant.policy.trains_aware
    float_epochs, qat_epochs = split_epochs(epochs, wants_qat, spec.sparsity > 0, qat_fraction)
    info = {
        "training_form": form, "float_epochs": float_epochs, "qat_epochs": 0, "qat": False,
        "qat_unannotated": [], "qat_note": "", "sparsity_target": spec.sparsity, "sparsity": 0.0,
        "xnnpack_policy": False, "xnnpack_policy_reason": "", "transfer_max_diff": 0.0, "precision": "float32",
    }
    if wants_qat and not qat_epochs:
        info["qat_note"] = "one epoch is spent on pruning; no epoch left for QAT (int8 PTQ instead)"
    if (horizon or resume) and not resumable(spec):
        raise ValueError(f"{spec.summary}: pruning and int8-qat train in one run; it cannot be trained in stages")
    data, teacher = _at_input_size(data, teacher, spec.input_size)
    live = resume.live if resume is not None and resume.live and resume.live.fits(horizon or epochs, teacher) else None
    model, info["precision"] = (live.model, _precision_of(live.model)) if live is not None else _built(spec, form, seed, precision)
    if resume is not None:
        info["resumed_live"] = live is not None
    options = dict(batch_size=batch_size, seed=seed, learning_rate=learning_rate, callback=callback, schedule=schedule,
                   teacher=teacher)
    history = History()
    if float_epochs:
        model = _float_phase(model, spec, data, float_epochs, history, info, {**options, "horizon": horizon, "resume": resume})
    if qat_epochs and history.stopped_early:
        info["qat_note"] = "training stopped early; no QAT (int8 PTQ instead)"
    elif qat_epochs:
        model = _qat_phase(model, spec, data, qat_epochs, history, info, options)
    native = _native(model, spec, seed, data, info, live.native if live is not None else None)
    if history.checkpoint is not None and history.checkpoint.live is not None:
        history.checkpoint.live.native = native
    from evaluators import compress

    info["sparsity"] = compress.sparsity(native)
    info["seconds"] = time.perf_counter() - start
    return native, history, info


def training_precision(spec, model, precision: str) -> str:
    """What ``spec`` (built in float32 as ``model``) trains in: ``float32``, or ``bfloat16`` (Keras'
    ``mixed_bfloat16``: bfloat16 arithmetic on float32 weights, which convert as float32 ones).
    ``bfloat16`` asks for it wherever training runs in one float phase (:func:`resumable`);
    ``auto`` only where it measured faster (RESULTS.md: 1.6-1.7x), on a CPU with bfloat16
    instructions: models whose convolutions all have a multiple of ``BFLOAT16_CHANNELS`` filters
    (the one-filter output head aside) and none depthwise; the others ran 1.6-2.5x slower."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: unknown {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision == "float32" or not resumable(spec):
        return "float32"
    if precision == "bfloat16":
        return "bfloat16"
    from evaluators.agent import cpu_flags

    return "bfloat16" if cpu_flags() & set(BFLOAT16_FLAGS) and _blocks_of_16(model) else "float32"


def _blocks_of_16(model) -> bool:
    layers = _tf.keras().layers
    if any(isinstance(layer, layers.DepthwiseConv2D) for layer in model.layers):
        return False
    filters = [layer.filters for layer in model.layers if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose))]
    return all(count % BFLOAT16_CHANNELS == 0 for count in filters if count > 1)


def _built(spec, form: str, seed: int, precision: str):
    """``(model, precision)``: ``spec`` built in its training ``form`` and :func:`training_precision`."""
    from space.model import build

    model = build(spec, grouped=form, seed=seed)
    chosen = training_precision(spec, model, precision)
    if chosen == "float32":
        return model, chosen
    mixed = _tf.keras().mixed_precision
    mixed.set_global_policy("mixed_bfloat16")  # the layers take their dtype policy when they are made
    try:
        return build(spec, grouped=form, seed=seed), chosen
    finally:
        mixed.set_global_policy("float32")


def _precision_of(model) -> str:
    return "bfloat16" if model.layers[-1].compute_dtype == "bfloat16" else "float32"


def training_form(spec) -> str:
    """``masked``: grouped convolutions train as dense ones with a block-diagonal mask (see
    ``space.blocks``), then move into the ``native`` model they convert from; ``native`` otherwise."""
    return "masked" if any(stage.groups > 1 for _, _, stage in spec.stages()) else "native"


def _at_input_size(data, teacher, size: int):
    """The training split (and the teacher's targets on it) at the candidate's input size."""
    if teacher is not None and teacher.targets.shape[1] != size:
        teacher = dataclasses.replace(teacher, targets=resize_images(teacher.targets, size))
    return training_split_at(data, size), teacher


def resumable(spec) -> bool:
    """Whether ``spec`` can be trained in stages: a float training without pruning."""
    return spec.quant.mode != "int8-qat" and spec.sparsity == 0


def split_epochs(epochs: int, qat: bool, pruning: bool, qat_fraction: float = QAT_FRACTION) -> tuple[int, int]:
    """(float epochs, QAT epochs): QAT takes ``qat_fraction`` of them, at least 1; pruning needs 1 float epoch."""
    if epochs < 1:
        raise ValueError(f"epochs: must be at least 1, got {epochs}")
    if not qat:
        return epochs, 0
    qat_epochs = min(max(1, round(epochs * qat_fraction)), epochs - 1 if pruning else epochs)
    return epochs - qat_epochs, qat_epochs


def _float_phase(model, spec, data, epochs, history, info, options):
    from evaluators import compress

    extra = []
    if spec.sparsity > 0:
        steps = epochs * math.ceil(len(data.train_images) / options["batch_size"])
        model, extra, pruning_info = compress.prune(model, spec.sparsity, steps)
        info.update(pruning_info)
    history.extend(train(model, data, epochs, keras_callbacks=extra, **options))
    return compress.strip(model) if spec.sparsity > 0 else model


def _qat_phase(model, spec, data, epochs, history, info, options):
    from evaluators import compress

    model, unannotated = compress.quantize(model)
    keep = [compress.KeepZeros(model)] if spec.sparsity > 0 else []
    history.extend(train(model, data, epochs, keras_callbacks=keep, first_epoch=history.epochs, **options))
    info.update(qat=True, qat_epochs=epochs, qat_unannotated=unannotated)
    return model


def _native(model, spec, seed, data, info, native=None):
    """The model in native form (grouped Conv2D) and float32, checked to compute what the trained one
    does; ``native``: the one an earlier stage of the run copied into (no new build)."""
    if info["training_form"] == "native" and info["precision"] == "float32":
        return model
    from evaluators import compress
    from evaluators.accuracy import predict_keras
    from space.model import build, transfer_weights

    native = native if native is not None and not info["qat"] else build(spec, grouped="native", seed=seed)
    if info["qat"]:
        native, _ = compress.quantize(native)
        compress.transfer_qat_weights(model, native)
    else:
        transfer_weights(model, native)
    images = np.asarray(data.val_images[:CHECK_IMAGES], np.float32)
    difference = float(np.abs(predict_keras(model, images) - predict_keras(native, images)).max())
    info["transfer_max_diff"] = difference
    tolerance = QAT_TOLERANCE if info["qat"] else BFLOAT16_TOLERANCE if info["precision"] == "bfloat16" else FLOAT_TOLERANCE
    if not difference <= tolerance:
        raise TrainingError(
            f"the native float32 model differs from the trained one by {difference:.3g} (> {tolerance}); "
            "the weight transfer is broken"
        )
    return native
