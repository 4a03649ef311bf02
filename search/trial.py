"""One trial: spec -> model -> (constraint check) -> training -> TFLite -> Dice -> latency -> storage.

``evaluate(trial, context)`` returns the objective values in the study's order, raises
``optuna.TrialPruned`` for a hopeless trial, and leaves every figure in the trial's user
attributes (see :mod:`studies` for the names) and the artifact in the result store.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from search.config import SearchConfig


class Infeasible(Exception):
    """The candidate breaks a constraint before training: recorded, not trained."""


class TrainedModels:
    """This worker's last few trained models, by what their training depends on.

    Post-training quantization does not change training: a spec that differs from an earlier one
    only in its PTQ settings (the presets ``unet`` and ``unet-int8``, or the sampler proposing one
    architecture with another quant mode) is converted from the same trained model instead of
    being trained again with the same seed to the same weights.
    """

    def __init__(self, size: int = 8):
        self.size = size
        self.entries: OrderedDict[str, tuple] = OrderedDict()

    @staticmethod
    def key(spec) -> str:
        return spec.replace(quant=spec.quant.for_training).to_json()

    def get(self, spec):
        """``(model, history, info, trial number)`` of an earlier training of ``spec``, or None."""
        key = self.key(spec)
        if key in self.entries:
            self.entries.move_to_end(key)
        return self.entries.get(key)

    def put(self, spec, model, history, info, number: int) -> None:
        self.entries[self.key(spec)] = (model, history, info, number)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


@dataclasses.dataclass
class TrialContext:
    """What every trial of a worker shares; built once per worker process."""

    config: SearchConfig
    data: object  # evaluators.data.Dataset
    device: object  # evaluators.devices.Device
    store: object  # studies.store.ResultStore
    protocol: object  # evaluators.runtime.Protocol
    trained: TrainedModels = dataclasses.field(default_factory=TrainedModels)

    @property
    def calibration(self) -> np.ndarray:
        return self.data.train_images


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

    def summary(self) -> dict[str, float]:
        total = time.perf_counter() - self.start
        return {**{k: round(v, 3) for k, v in self.phases.items()}, "total": round(total, 3)}


def candidate_spec(trial, config: SearchConfig):
    """The trial's spec: sampled from the space (an enqueued preset's parameters make it that
    preset), or a preset outside the space as it is."""
    from space.presets import preset
    from space.sampling import sample

    name = trial.user_attrs.get("preset")
    if name and not trial.user_attrs.get("preset_params"):
        return preset(name, config.image_size, config.channels)
    return sample(trial, config.space, config.image_size, config.channels)


@dataclasses.dataclass(frozen=True)
class FrontMember:
    """A trial on the current front, as early stopping sees it."""

    number: int
    dice_history: list[float]
    costs: dict[str, float]  # latency_ms, size_kb

    def no_costlier_than(self, costs: dict[str, float]) -> bool:
        return all(self.costs[name] <= value for name, value in costs.items())


class Untrained:
    """The candidate built and converted without training. Its size and latency do not depend on the
    trained weights, so they are known before any training is spent: each is computed on first use
    (a conversion, then a measurement) and recorded in the trial."""

    def __init__(self, trial, spec, context: TrialContext, clock: Stopwatch):
        self.trial, self.spec, self.context, self.clock = trial, spec, context, clock

    @functools.cached_property
    def tflite(self) -> bytes:
        from space.convert import to_tflite
        from space.model import build

        model = build(self.spec)
        _record_costs(self.trial, self.spec, model)
        with self.clock.phase("convert"):
            tflite = to_tflite(model, self.spec.quant, self.context.calibration)
        _set(self.trial, size_bytes=len(tflite))
        return tflite

    @property
    def size_kb(self) -> float:
        return len(self.tflite) / 1024

    @functools.cached_property
    def latency_ms(self) -> float:
        with self.clock.phase("latency"):
            median = self.context.device.measure(self.tflite, self.context.protocol)["median_ms"]
        _set(self.trial, latency_ms=median)
        return median

    def costs(self, names) -> dict[str, float]:
        return {name: getattr(self, name) for name in names}


def evaluate(trial, context: TrialContext, front=lambda: []) -> list[float]:
    """Run the whole pipeline for ``trial``; see the module docstring. ``front()`` gives the study's
    current front as :class:`FrontMember` s (see :func:`front_members`) for early stopping."""
    from space.convert import to_tflite

    clock = Stopwatch()
    config = context.config
    spec = candidate_spec(trial, config)
    _set(trial, spec=spec.to_dict(), summary=spec.summary, kinds=list(spec.kinds), quant=spec.quant.mode)
    untrained = Untrained(trial, spec, context, clock)
    try:
        if config.max_latency_ms or config.max_size_kb:
            _check_before_training(untrained, config)
        model, history = _train(trial, spec, context, clock, lambda: _judge(trial, front, untrained, config))
        _record_costs(trial, spec, model)
        with clock.phase("convert"):
            tflite = to_tflite(model, spec.quant, context.calibration)
        figures = _accuracy(trial, history, tflite, context, clock)
        latency = _measure(trial, tflite, context, clock)
        _store(trial, tflite, latency, figures, context, clock)
        values = {"dice": figures["dice"], "latency_ms": latency["median_ms"], "size_kb": len(tflite) / 1024}
        _record_constraints(trial, config, values)
        return [values[name] for name in config.objectives]
    except Infeasible as reason:
        _set(trial, infeasible=str(reason))
        return [values_if_infeasible(trial)[name] for name in config.objectives]
    finally:
        _set(trial, seconds=clock.summary())


def values_if_infeasible(trial) -> dict[str, float]:
    """An infeasible candidate is COMPLETE with Dice 0, so samplers learn where that region is."""
    from studies.metrics import size_kb

    attrs = trial.user_attrs
    size = size_kb(attrs.get("size_bytes"))
    return {"dice": 0.0, "latency_ms": attrs.get("latency_ms", math.inf), "size_kb": math.inf if size is None else size}


def _check_before_training(untrained: Untrained, config: SearchConfig):
    """The untrained model's size, then its latency, against the constraints."""
    violations = []
    if config.max_size_kb and untrained.size_kb > config.max_size_kb:
        violations.append(f"size {untrained.size_kb:.0f} KB > --max-size-kb {config.max_size_kb:g}")
    if config.max_latency_ms and not violations and untrained.latency_ms > config.max_latency_ms:
        violations.append(f"latency {untrained.latency_ms:.2f} ms > --max-latency-ms {config.max_latency_ms:g}")
    if violations:
        latency = untrained.trial.user_attrs.get("latency_ms", 0.0)
        values = {"dice": 0.0, "latency_ms": latency, "size_kb": untrained.size_kb}
        _set_constraints(untrained.trial, config, values)
        raise Infeasible("; ".join(violations) + " (rejected before training)")


def _record_costs(trial, spec, model) -> None:
    """Parameters and MACs from the layer shapes (a QAT-wrapped model is counted on a plain build)."""
    from space.model import build, is_quantization_aware, static_costs

    costs = static_costs(build(spec) if is_quantization_aware(model) else model)
    _set(trial, params=costs.params, macs=costs.macs)


def _train(trial, spec, context, clock, judge):
    earlier = context.trained.get(spec)
    if earlier is not None:
        model, history, info, number = earlier
        _set(trial, dice_history=[round(float(dice), 4) for dice in history.val_dice],
             training={**info, "reused_from": number})
        return model, history
    model, history = _fit(trial, spec, context, clock, judge)
    context.trained.put(spec, model, history, trial.user_attrs.get("training", {}), trial.number)
    return model, history


def _fit(trial, spec, context, clock, judge):
    import optuna

    from evaluators.train import fit_candidate

    config = context.config
    verdict = judge()

    def keep_going(epoch: int, val_dice: float) -> bool:
        history = trial.user_attrs.get("dice_history", []) + [round(float(val_dice), 4)]
        trial.set_user_attr("dice_history", history)
        return not verdict(len(history) - 1, val_dice)

    with clock.phase("train"):
        model, history, info = fit_candidate(spec, context.data, config.epochs, callback=keep_going, **config.training)
    if info:
        _set(trial, training=_jsonable(info))
    if history.stopped_early:
        ahead = ", ".join(f"#{number}" for number in verdict.ahead)
        members = "every front member" + (" no slower and no larger" if verdict.costs else "")
        reason = f"validation Dice {history.val_dice[-1]:.3f} after epoch {len(history.val_dice)} is below that of {members} ({ahead})"
        _set(trial, stopped_early=reason)
        raise optuna.TrialPruned(reason)
    return model, history


def front_members(study) -> list[FrontMember]:
    """The trials on the study's current front (:mod:`studies.front`, as every reader sees it), with
    their Dice per epoch and their measured costs."""
    from studies.front import front_trials, objective_names
    from studies.metrics import trial_metrics

    members = []
    for trial in front_trials(study.get_trials(deepcopy=False), objective_names(study)):
        measured = trial_metrics(trial.user_attrs)
        if "latency_ms" in measured and "size_kb" in measured:
            costs = {"latency_ms": measured["latency_ms"], "size_kb": measured["size_kb"]}
            members.append(FrontMember(trial.number, trial.user_attrs.get("dice_history", []), costs))
    return members


class Verdict:
    """Whether a candidate in training is hopeless: at some epoch, its validation Dice is below that of
    every front member (at least two of them). Never judged after the first epoch, where many good
    candidates still predict nothing, nor after the last.

    With ``costs`` (``--early-stop cheaper``), only the front members that are no slower and no larger
    than the candidate count: it is headed for the region they already dominate, and a candidate
    cheaper than the whole front explores unstopped. ``costs()`` gives the candidate's costs (a
    conversion and a measurement), asked for only when two members are ahead at that epoch.
    ``ahead`` names the members that stopped it.
    """

    def __init__(self, front: list[FrontMember], epochs: int, costs=None):
        self.front, self.epochs, self.costs = front, epochs, costs
        self.ahead: list[int] = []

    def __call__(self, epoch: int, val_dice: float) -> bool:
        if not 1 <= epoch < self.epochs - 1:
            return False
        reached = [m for m in self.front if len(m.dice_history) > epoch]
        if sum(m.dice_history[epoch] > val_dice for m in reached) < 2:
            return False  # decided without the candidate's costs
        costs = self.costs() if self.costs else {}
        cheaper = [m for m in reached if m.no_costlier_than(costs)]
        if len(cheaper) >= 2 and all(m.dice_history[epoch] > val_dice for m in cheaper):
            self.ahead = [m.number for m in cheaper]
        return bool(self.ahead)


def _judge(trial, front, untrained: Untrained, config: SearchConfig) -> Verdict:
    """Presets are references and never stopped; without a Dice objective, Dice stops nothing."""
    if config.early_stop == "off" or trial.user_attrs.get("preset") or "dice" not in config.objectives:
        return Verdict([], config.epochs)
    if config.early_stop == "front":
        return Verdict(front(), config.epochs)
    names = [name for name in config.objectives if name != "dice"]
    return Verdict(front(), config.epochs, lambda: untrained.costs(names))


def _accuracy(trial, history, tflite, context, clock) -> dict:
    """Dice and IoU of the converted model; the float Dice is the Keras model's after the last
    epoch (the training already measured it on the same validation images)."""
    from evaluators.accuracy import evaluate_tflite

    with clock.phase("evaluate"):
        figures = evaluate_tflite(tflite, context.data)
    if not math.isfinite(figures["dice"]):
        raise RuntimeError("the converted model's Dice is not a number")
    _set(trial, dice=figures["dice"], iou=figures["iou"], float_dice=float(history.val_dice[-1]))
    return figures


def _measure(trial, tflite, context, clock) -> dict:
    with clock.phase("latency"):
        stats = context.device.measure(tflite, context.protocol)
    _set(
        trial,
        latency_ms=stats["median_ms"], latency_p10_ms=stats["p10_ms"], latency_p90_ms=stats["p90_ms"],
        latency_cv=stats["cv"], device=context.device.name, size_bytes=len(tflite),
        peak_memory_bytes=stats.get("peak_activation_bytes"),
    )
    if stats.get("xnnpack_error"):  # timed on LiteRT's own kernels: what the board runs when XNNPACK refuses
        _set(trial, xnnpack_error=stats["xnnpack_error"])
    return stats


def _store(trial, tflite, latency, figures, context, clock):
    from evaluators.accuracy import predict_tflite, preview_pngs

    with clock.phase("store"):
        trial_id = trial._trial_id
        study_name = trial.study.study_name
        context.store.save_artifact(trial_id, study_name, trial.number, tflite)
        context.store.save_measurement(
            trial_id, context.device.name, context.device.info(), _jsonable(context.protocol), _jsonable(latency)
        )
        images, masks = context.data.val_images[:3], context.data.val_masks[:3]
        context.store.save_previews(trial_id, preview_pngs(images, masks, predict_tflite(tflite, images)))


def _record_constraints(trial, config: SearchConfig, values: dict):
    _set_constraints(trial, config, values)
    if config.min_dice is not None and values["dice"] < config.min_dice:
        _set(trial, infeasible=f"dice {values['dice']:.3f} < --min-dice {config.min_dice:g}")


def _set_constraints(trial, config: SearchConfig, values: dict) -> None:
    """One constraint value per limit of the study (<= 0 when met), where Optuna 5 keeps them
    (``trial.set_constraint``): the samplers, ``study.best_trials`` and :mod:`studies.front` read them there."""
    from studies.front import limit_constraints

    for name, value in limit_constraints(config.constraints, values).items():
        trial.set_constraint(name, value)


def _set(trial, **attrs):
    for key, value in attrs.items():
        trial.set_user_attr(key, _jsonable(value))


def _jsonable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
