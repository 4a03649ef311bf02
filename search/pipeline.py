"""The steps of evaluating one spec: build, train, convert, score, measure, store.

Every caller chains the same steps; none of them knows Optuna. Each takes plain things (a
:class:`space.spec.CandidateSpec`, an :class:`evaluators.data.Dataset`, an
:class:`evaluators.devices.Device`, the config's training keywords ``SearchConfig.training``, the
:func:`latency_protocol`) and a :class:`Stopwatch`, and returns plain results:

    untrained = Untrained(spec, calibration, device, protocol, clock)   # costs before training
    trained = train(spec, data, epochs, training, clock, callback)      # -> Trained(model, history, info),
                                                                        #    compressed as the spec asks
    evaluation = finish(spec, trained, data, device, protocol, clock)   # convert -> score -> measure
    store(results, record, evaluation, device, protocol, data, clock)   # artifact, latency, previews

Callers: a search trial (:func:`search.trial.evaluate`: Optuna's attributes, the early-stop
verdict, reuse of a trained model) and retraining before export (:mod:`search.retrain`). The
work to come plugs in here, not in a copy:

- a promoted rung resumes training: :func:`train` with ``resume=`` the stored
  ``Trained.history.checkpoint`` (weights, optimizer state, epochs done;
  ``evaluators.train.Checkpoint.to_bytes`` for the store) and ``horizon=`` the last rung's
  epochs, so that 2 -> 6 -> 18 epochs ends where a plain 18-epoch run ends, then ``finish``;
- distillation: :func:`train` with ``teacher=`` an ``evaluators.distill.Teacher`` (its soft
  targets on the training images join the loss);
- ``search confirm``: for each seed, ``train`` on the full training split (``training`` with that
  seed), ``finish`` (validation Dice, latency again), ``score(..., split="test")`` for the held-out
  Dice, and ``store`` under the confirmed record.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from contextlib import contextmanager

from studies.metrics import size_kb

SEARCH_MIN_SECONDS = 0.5  # of timing per model: every trial is timed, so half the benchmark default


class Stopwatch:
    """Seconds per phase; whatever is not in a phase is the tool's own overhead."""

    def __init__(self):
        self.start = time.perf_counter()
        self.phases: dict[str, float] = {}
        self._inner: list[float] = []  # per open phase, the seconds of phases nested in it

    @contextmanager
    def phase(self, name: str):
        """Time spent in ``name``; a phase nested in another counts for itself only."""
        begin = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - begin
            self.phases[name] = self.phases.get(name, 0.0) + elapsed - self._inner.pop()
            if self._inner:
                self._inner[-1] += elapsed

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def summary(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in self.phases.items()}, "total": round(self.elapsed, 3)}


def duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on: how progress lines show elapsed time and ETAs."""
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


def latency_protocol(threads: int, clock: str = "wall"):
    """How every evaluated model is timed: the benchmark defaults (10 warm-up, at least 50 timed
    runs), with ``SEARCH_MIN_SECONDS`` of timing at least."""
    from evaluators.runtime import Protocol

    return Protocol(threads=threads, min_seconds=SEARCH_MIN_SECONDS, clock=clock)


def jsonable(value):
    """``value`` as JSON can hold it: ``to_dict()`` objects and dataclasses as dicts, numpy scalars
    as Python numbers, tuples as lists, inf and NaN as None."""
    import numpy as np

    if hasattr(value, "to_dict") and not isinstance(value, type):  # its own JSON form first
        value = value.to_dict()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- the steps ------------------------------------------------------------------------------------
def nothing(**figures) -> None:
    """The default ``record``: figures are returned, not kept anywhere else."""


class Untrained:
    """The candidate built and converted without training. Its size and latency do not depend on the
    trained weights, so they are known before any training is spent: each is computed on first use
    (a conversion, then a measurement) and handed to ``record`` at once, so a caller that stops
    the candidate later still has them. With ``predict`` (the device's latency model), the latency
    is predicted from the file instead of timed: constraint checks and the ``cheaper`` rule then
    cost a conversion, not seconds of timing."""

    def __init__(self, spec, calibration, device, protocol, clock: Stopwatch, record=nothing, predict=None):
        self.spec, self.calibration, self.device, self.protocol = spec, calibration, device, protocol
        self.clock, self.record, self.predict = clock, record, predict

    @functools.cached_property
    def tflite(self) -> bytes:
        from evaluators.structured import shrink
        from space.model import build

        model, _ = shrink(self.spec, build(self.spec))  # pruned and factorised as after training: the same shapes
        self.record(**model_costs(self.spec, model))
        tflite = convert(self.spec, model, self.calibration, self.clock)
        self.record(size_bytes=len(tflite))
        return tflite

    @property
    def size_kb(self) -> float:
        return size_kb(len(self.tflite))

    @functools.cached_property
    def latency_ms(self) -> float:
        if self.predict is not None:
            with self.clock.phase("latency"):
                median = float(self.predict(self.tflite))
            self.record(latency_ms=median, latency_predicted=True)
            return median
        median = measure(self.tflite, self.device, self.protocol, self.clock)["median_ms"]
        self.record(latency_ms=median)
        return median

    def costs(self, names) -> dict[str, float]:
        """``latency_ms`` and/or ``size_kb``, as ``names`` asks."""
        return {name: getattr(self, name) for name in names}


@dataclasses.dataclass
class Trained:
    """A trained candidate: the native model ready for conversion, its History, and
    ``fit_candidate``'s info (JSON-ready)."""

    model: object
    history: object  # evaluators.train.History
    info: dict


def train(spec, data, epochs: int, training: dict, clock: Stopwatch, callback=None, *,
          horizon=None, resume=None, teacher=None) -> Trained:
    """Train ``spec`` on ``data`` for ``epochs`` with ``training`` (``SearchConfig.training``: batch
    size, seed, learning rate, schedule; ``fine_tune_epochs`` for :func:`compress`, which follows).
    ``callback(epoch, val_dice)`` returning False stops it
    (``history.stopped_early``).

    In stages (a promoted rung): ``resume`` is the ``history.checkpoint`` of the stage before and
    ``horizon`` the epochs the schedule spans (the last rung's), so that 2 -> 6 -> 18 ends where
    one 18-epoch run ends; ``epochs`` are this stage's (see ``evaluators.train.fit_candidate``).
    ``teacher`` (``evaluators.distill.Teacher``): its soft targets join the loss."""
    from evaluators.train import fit_candidate

    fit = {key: value for key, value in training.items() if key != "fine_tune_epochs"}  # that one is compress's
    with clock.phase("train"):
        model, history, info = fit_candidate(
            spec, data, epochs, callback=callback, horizon=horizon, resume=resume, teacher=teacher, **fit
        )
    return compress(spec, Trained(model, history, jsonable(info or {})), data, training, clock)


def compress(spec, trained: Trained, data, training: dict, clock: Stopwatch) -> Trained:
    """The trained model pruned to fewer channels and/or factorised to a lower rank as ``spec`` asks
    (``channel_keep``, ``rank_fraction``), then fine-tuned briefly (``evaluators.structured.compress``);
    ``trained`` itself when both are off or the training stopped early (the trial is dropped). Its
    history goes on with the fine-tune's epochs but keeps the training's checkpoint (of the
    uncompressed model: a promoted rung trains that on)."""
    if not spec.compressed or trained.history.stopped_early:
        return trained
    from evaluators.structured import compress as compressed

    with clock.phase("compress"):
        model, history, info = compressed(spec, trained.model, data, trained.history, **training)
    return Trained(model, history, {**trained.info, "compression": jsonable(info)})


def model_costs(spec, model) -> dict[str, int]:
    """``params`` and ``macs`` from the layer shapes (a QAT-wrapped model is counted on a plain build)."""
    from space.model import build, is_quantization_aware, static_costs

    costs = static_costs(build(spec) if is_quantization_aware(model) else model)
    return {"params": costs.params, "macs": costs.macs}


def convert(spec, model, calibration, clock: Stopwatch) -> bytes:
    """The ``.tflite`` bytes with the spec's quantization (calibrated on ``calibration`` images)."""
    from space.convert import to_tflite

    with clock.phase("convert"):
        return to_tflite(model, spec.quant, calibration)


def score(tflite: bytes, data, clock: Stopwatch, split: str = "val") -> dict:
    """The converted model's scores on one split of ``data``: ``dice``, ``iou``, ``dice_per_image``,
    ``dice_ci95`` (see ``evaluators.accuracy.evaluate_tflite``)."""
    from evaluators.accuracy import evaluate_tflite

    with clock.phase("evaluate"):
        figures = evaluate_tflite(tflite, data, split=split)
    if not math.isfinite(figures["dice"]):
        raise RuntimeError("the converted model's Dice is not a number")
    return figures


def measure(tflite: bytes, device, protocol, clock: Stopwatch) -> dict:
    """The device's latency statistics of ``tflite`` (raw samples included)."""
    with clock.phase("latency"):
        return device.measure(tflite, protocol)


def latency_figures(stats: dict, device_name: str, size_bytes: int) -> dict:
    """The figures kept of a measurement (the names of the trial attributes). ``latency_unsteady``:
    its CV stayed above the protocol's target after every retry (the front treats such latencies
    as the ties they are; status, the progress lines and the dashboard flag them)."""
    target = (stats.get("protocol") or {}).get("max_cv")
    figures = {
        "latency_ms": stats["median_ms"], "latency_p10_ms": stats["p10_ms"], "latency_p90_ms": stats["p90_ms"],
        "latency_cv": stats["cv"], "latency_runs": stats.get("runs"), "latency_attempts_ms": stats.get("attempt_medians_ms"),
        "device": device_name, "size_bytes": size_bytes,
        "peak_memory_bytes": stats.get("peak_activation_bytes"),
        "latency_unsteady": bool(target is not None and stats["cv"] > target),
        "latency_predicted": bool(stats.get("predicted")),
    }
    if stats.get("timed_as_trial") is not None:  # a promoted rung: timed once, as its first rung
        figures["latency_timed_as"] = stats["timed_as_trial"]
    if stats.get("xnnpack_error"):  # timed on LiteRT's own kernels: what the board runs when XNNPACK refuses
        figures["xnnpack_error"] = stats["xnnpack_error"]
    return figures


@dataclasses.dataclass
class Evaluation:
    """A trained candidate converted, scored and timed."""

    tflite: bytes
    figures: dict  # params, macs, dice, iou, float_dice, latency_*, device, size_bytes, peak_memory_bytes
    latency: dict  # the device's statistics, raw samples included

    @property
    def values(self) -> dict[str, float]:
        """The objectives by name."""
        return {"dice": self.figures["dice"], "latency_ms": self.figures["latency_ms"], "size_kb": size_kb(len(self.tflite))}


def finish(spec, trained: Trained, data, device, protocol, clock: Stopwatch, timed=None) -> Evaluation:
    """Convert ``trained`` (calibrating on ``data``'s training images), score it on the validation
    split and time it. The float Dice is the Keras model's after the last epoch (the training
    already measured it on the same validation images). ``timed``: the device's statistics of the
    same layers timed before with other weights (a promoted rung's parent), kept instead of
    timing again: the kernels, and so the latency, do not depend on the weights."""
    costs = model_costs(spec, trained.model)
    tflite = convert(spec, trained.model, data.train_images, clock)
    accuracy = score(tflite, data, clock)
    stats = timed if timed is not None else measure(tflite, device, protocol, clock)
    figures = {**costs, "float_dice": float(trained.history.val_dice[-1]), **accuracy_figures(accuracy),
               **latency_figures(stats, device.name, len(tflite))}
    if getattr(data, "has_test", False):  # for reporting only: nothing that chooses reads test_*
        figures.update(accuracy_figures(score(tflite, data, clock, split="test"), prefix="test_"))
    return Evaluation(tflite, figures, stats)


def accuracy_figures(accuracy: dict, prefix: str = "") -> dict:
    """The figures kept of a score (the names of the trial attributes): mean Dice and IoU, the Dice's
    95% interval over images and each image's Dice."""
    return {f"{prefix}{key}": accuracy[key] for key in ("dice", "iou", "dice_ci95", "dice_per_image")}


def store(results, record: tuple[int, str, int], evaluation: Evaluation, device, protocol, data, clock: Stopwatch) -> None:
    """Save the artifact, the measurement and three preview images in ``results`` (a
    :class:`studies.store.ResultStore`) under ``record``: (trial id, study name, trial number)."""
    from evaluators.accuracy import predict_tflite, preview_pngs

    trial_id, study_name, number = record
    with clock.phase("store"):
        results.save_artifact(trial_id, study_name, number, evaluation.tflite)
        ran = evaluation.latency.get("protocol") or jsonable(protocol)  # what ran: threads capped at the device's cores
        results.save_measurement(trial_id, device.name, device.info(), ran, jsonable(evaluation.latency))
        images, masks = data.val_images[:3], data.val_masks[:3]
        results.save_previews(trial_id, preview_pngs(images, masks, predict_tflite(evaluation.tflite, images)))
