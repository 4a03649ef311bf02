"""One trial: the Optuna side of evaluating a spec (the steps themselves are :mod:`search.pipeline`).

``evaluate(trial, context)`` samples the spec, runs the pipeline (constraint check on the untrained
model, training or reuse of an earlier training, conversion, Dice, latency, storage), returns the
objective values in the study's order, raises ``optuna.TrialPruned`` for a hopeless trial, and
leaves every figure in the trial's user attributes (see :mod:`studies` for the names).
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict

import numpy as np

from search import pipeline
from search.config import SearchConfig
from search.pipeline import Stopwatch, Untrained, jsonable
from studies.front import DICE_RESOLUTION


class Infeasible(Exception):
    """The candidate breaks a constraint before training: recorded, not trained."""


class TrainedModels:
    """This worker's last few trained models, by what their training depends on.

    Post-training quantization does not change training: a spec that differs from an earlier one
    only in its PTQ settings (the presets ``unet`` and ``unet-int8``, or the sampler proposing one
    architecture with another quant mode) is converted from the same trained model instead of
    being trained again with the same seed to the same weights. With rungs, a promotion goes on
    training in the models its parent's training left here (``evaluators.train.Live``), so an
    entry keeps its weights apart and puts them back into the model when it is asked for.
    """

    def __init__(self, size: int = 8):
        self.size = size
        self.entries: OrderedDict[str, tuple] = OrderedDict()

    @staticmethod
    def key(spec, rung: int = 0) -> str:
        return f"{rung}:" + spec.replace(quant=spec.quant.for_training).to_json()

    def get(self, spec, rung: int = 0, user: int | None = None):
        """``(pipeline.Trained, trial number)`` of an earlier training of ``spec`` to ``rung``, or None;
        ``user``: the trial number that takes it (see :meth:`numbers`)."""
        key = self.key(spec, rung)
        if key not in self.entries:
            return None
        self.entries.move_to_end(key)
        trained, number, weights, users = self.entries[key]
        trained.model.set_weights(weights)  # a later stage may have trained the same model on
        if user is not None:
            users.add(user)
        return trained, number

    def numbers(self) -> set[int]:
        """The trials whose trainings these are, or that took one of them (an int8 twin)."""
        return set().union(*(users for *_, users in self.entries.values()))

    def put(self, spec, trained, number: int, rung: int = 0) -> None:
        self.entries[self.key(spec, rung)] = (trained, number, trained.model.get_weights(), {number})
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
    teacher: object = None  # evaluators.distill.Teacher of --distill
    latency_model: object = None  # evaluators.latency_model.LatencyModel of the device, if calibrated

    @property
    def calibration(self) -> np.ndarray:
        return self.data.train_images


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


def evaluate(trial, context: TrialContext, front=lambda: []) -> list[float]:
    """Run the whole pipeline for ``trial``; see the module docstring. ``front()`` gives the study's
    current front as :class:`FrontMember` s (see :func:`front_members`) for early stopping."""
    clock = Stopwatch()
    config = context.config
    spec = candidate_spec(trial, config)
    _set(trial, spec=spec.to_dict(), summary=spec.summary, kinds=list(spec.kinds), quant=spec.quant.mode)
    predict = context.latency_model.predict if context.latency_model is not None else None
    untrained = Untrained(spec, context.calibration, context.device, context.protocol, clock,
                          record=lambda **figures: _set(trial, **figures), predict=predict)
    try:
        promoted = trial.user_attrs.get("parent_id") is not None
        if (config.max_latency_ms or config.max_size_kb) and not promoted:  # a promotion's parent passed
            _check_before_training(trial, untrained, config)
        trained = _train(trial, spec, context, clock, lambda: _judge(trial, front, untrained, config))
        timed = _parent_timing(trial, context) if promoted else None
        evaluation = pipeline.finish(spec, trained, context.data, context.device, context.protocol, clock, timed)
        _set(trial, **evaluation.figures)
        record = (trial._trial_id, trial.study.study_name, trial.number)
        pipeline.store(context.store, record, evaluation, context.device, context.protocol, context.data, clock)
        values = evaluation.values
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


def _check_before_training(trial, untrained: Untrained, config: SearchConfig):
    """The untrained model's size, then its latency, against the constraints."""
    violations = []
    if config.max_size_kb and untrained.size_kb > config.max_size_kb:
        violations.append(f"size {untrained.size_kb:.0f} KB > --max-size-kb {config.max_size_kb:g}")
    if config.max_latency_ms and not violations and untrained.latency_ms > config.max_latency_ms:
        violations.append(f"latency {untrained.latency_ms:.2f} ms > --max-latency-ms {config.max_latency_ms:g}")
    if violations:
        latency = trial.user_attrs.get("latency_ms", 0.0)
        values = {"dice": 0.0, "latency_ms": latency, "size_kb": untrained.size_kb}
        _set_constraints(trial, config, values)
        raise Infeasible("; ".join(violations) + " (rejected before training)")


def _train(trial, spec, context, clock, judge) -> pipeline.Trained:
    """An earlier training of the same spec to the same rung (one that differs only in PTQ), or a new one."""
    rung = trial.user_attrs.get("rung", 0)
    earlier = context.trained.get(spec, rung, trial.number)
    if earlier is not None:
        trained, number = earlier
        _set(trial, dice_history=[round(float(dice), 4) for dice in trained.history.val_dice],
             training={**trained.info, "reused_from": number})
        _keep_checkpoint(trial, spec, context, trained)  # its own promotion may come
        return trained
    trained = _fit(trial, spec, context, clock, judge())
    context.trained.put(spec, trained, trial.number, rung)
    _keep_checkpoint(trial, spec, context, trained)
    return trained


def _stage(trial, spec, context) -> dict:
    """How far ``trial`` trains: ``--epochs`` in one run; with rungs, the epochs of its rung, on the
    last rung's schedule, from its parent's checkpoint (from scratch when there is none, or when
    the spec cannot train in stages: pruning, int8-qat)."""
    from evaluators.train import resumable

    rungs = context.config.rung_plan
    if rungs is None:
        return dict(epochs=context.config.epochs)
    rung = trial.user_attrs.get("rung", 0)
    if not resumable(spec):
        return dict(epochs=rungs.epochs[rung])
    checkpoint = _parent_checkpoint(trial, spec, context)
    if checkpoint is None:
        return dict(epochs=rungs.epochs[rung], horizon=rungs.horizon)
    return dict(epochs=rungs.epochs[rung] - checkpoint.epochs, horizon=rungs.horizon, resume=checkpoint)


def _parent_checkpoint(trial, spec, context):
    """Where the parent's training stopped: in this worker's memory when it trained it (its live
    models come along: no rebuild, no new trace), else from the store; ``None`` without a parent."""
    from evaluators.train import Checkpoint

    parent = trial.user_attrs.get("parent_id")
    if parent is None:
        return None
    earlier = context.trained.get(spec, trial.user_attrs["rung"] - 1)
    if earlier is not None and earlier[0].history.checkpoint is not None:
        return earlier[0].history.checkpoint
    saved = context.store.checkpoint(parent)
    return Checkpoint.from_bytes(saved) if saved is not None else None


def _parent_timing(trial, context) -> dict | None:
    """The statistics the parent's first timing on this device gave (those its figures came from),
    naming the trial first timed (``timed_as_trial``): a promoted rung has its parent's layers and
    other weights, so timing it again costs seconds and adds only noise. ``None`` when the parent
    was timed elsewhere (a study resumed on another host, or predicted where it is now timed)."""
    here = _timed_on(context.device.name, context.device.info())
    stored = context.store.measurements(trial.user_attrs["parent_id"])
    first = next((m["stats"] for m in stored if _timed_on(m["device"], m["device_info"]) == here), None)
    return None if first is None else {"timed_as_trial": trial.user_attrs["parent"], **first}


def _timed_on(device: str, info: dict) -> tuple:
    return device, info.get("hostname"), info.get("cpu"), info.get("predicted_by")


def _keep_checkpoint(trial, spec, context, trained) -> None:
    """Below the last rung, keep where the training stopped, for the promotion that may come; a
    promoted trial's parent checkpoint is no longer needed once it has trained on."""
    rungs, rung = context.config.rung_plan, trial.user_attrs.get("rung", 0)
    if rungs is None:
        return
    if trial.user_attrs.get("parent_id") is not None:
        context.store.drop_checkpoint(trial.user_attrs["parent_id"])
    checkpoint = trained.history.checkpoint
    if rung < len(rungs.epochs) - 1 and checkpoint is not None and trained.info.get("qat_epochs", 0) == 0:
        context.store.save_checkpoint(trial._trial_id, checkpoint.epochs, checkpoint.to_bytes())


def _fit(trial, spec, context, clock, verdict) -> pipeline.Trained:
    """Train with ``verdict`` judging every epoch; a stopped candidate is pruned, its reason recorded."""
    import optuna

    def keep_going(epoch: int, val_dice: float) -> bool:
        history = trial.user_attrs.get("dice_history", []) + [round(float(val_dice), 4)]
        trial.set_user_attr("dice_history", history)
        return not verdict(len(history) - 1, val_dice)

    stage = _stage(trial, spec, context)
    if context.teacher is not None and not trial.user_attrs.get("preset"):  # presets are references: plain training
        stage["teacher"] = context.teacher
        _set(trial, distilled_from=context.config.distill)
    if "resume" in stage:
        _set(trial, resumed_at_epoch=stage["resume"].epochs)
    trained = pipeline.train(spec, context.data, stage.pop("epochs"), context.config.training, clock, keep_going, **stage)
    if trained.info:
        _set(trial, training=trained.info)
    history = trained.history
    if history.stopped_early:
        ahead = ", ".join(f"#{number}" for number in verdict.ahead)
        members = "every front member" + (" no slower and no larger" if verdict.costs else "")
        reason = f"validation Dice {history.val_dice[-1]:.3f} after epoch {len(history.val_dice)} is below that of {members} ({ahead})"
        _set(trial, stopped_early=reason)
        raise optuna.TrialPruned(reason)
    return trained


def front_members(study) -> list[FrontMember]:
    """The trials on the study's current front (:mod:`studies.front`, as every reader sees it), with
    their Dice per epoch and their measured costs."""
    from studies.front import front_trials, objective_names
    from studies.metrics import trial_metrics

    members = []
    for trial in front_trials(study.get_trials(deepcopy=False), objective_names(study), study.study_name):
        measured = trial_metrics(trial.user_attrs)
        if "latency_ms" in measured and "size_kb" in measured:
            costs = {"latency_ms": measured["latency_ms"], "size_kb": measured["size_kb"]}
            members.append(FrontMember(trial.number, trial.user_attrs.get("dice_history", []), costs))
    return members


class Verdict:
    """Whether a candidate in training is hopeless: at some epoch, its validation Dice is below that of
    every front member (at least two of them) by more than the front's tie (``DICE_RESOLUTION``: a
    candidate level with the front is not behind it; on isbi2012, where a constant mask and the
    presets that learn nothing else score the same, ties stopped 33 of one study's 51 candidates).
    Never judged after the first epoch, where many good candidates still predict nothing, nor after
    the last.

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
        if sum(_ahead(m, epoch, val_dice) for m in reached) < 2:
            return False  # decided without the candidate's costs
        costs = self.costs() if self.costs else {}
        cheaper = [m for m in reached if m.no_costlier_than(costs)]
        if len(cheaper) >= 2 and all(_ahead(m, epoch, val_dice) for m in cheaper):
            self.ahead = [m.number for m in cheaper]
        return bool(self.ahead)


def _ahead(member: FrontMember, epoch: int, val_dice: float) -> bool:
    return member.dice_history[epoch] > val_dice + DICE_RESOLUTION


def _judge(trial, front, untrained: Untrained, config: SearchConfig) -> Verdict:
    """Presets are references and never stopped; without a Dice objective, Dice stops nothing; with
    rungs, the rungs decide who trains on (a rung is a few epochs: too short to judge within)."""
    if config.early_stop == "off" or config.rungs or trial.user_attrs.get("preset") or "dice" not in config.objectives:
        return Verdict([], config.epochs)
    if config.early_stop == "front":
        return Verdict(front(), config.epochs)
    names = [name for name in config.objectives if name != "dice"]
    return Verdict(front(), config.epochs, lambda: untrained.costs(names))


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
        trial.set_user_attr(key, jsonable(value))
