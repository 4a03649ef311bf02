"""Real Optuna studies in SQLite, written the way ``search start`` writes them (see ``studies`` docs)."""

from __future__ import annotations

import random
import warnings

import optuna

from space.spec import CandidateSpec, QuantSpec, StageSpec, uniform
from studies import METRICS

optuna.logging.set_verbosity(optuna.logging.WARNING)

KINDS = ("standard", "group", "depthwise", "fire", "shuffle")
QUANTS = ("float32", "dynamic", "float16", "int8")
CONFIG = {"max_latency_ms": 40.0, "min_dice": 0.5, "max_size_kb": None}


def create_study(url: str, name: str, config: dict | None = None) -> optuna.Study:
    study = optuna.create_study(storage=url, study_name=name, directions=list(METRICS.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(METRICS))
    study.set_user_attr("config", dict(CONFIG if config is None else config))
    return study


def spec_for(index: int) -> CandidateSpec:
    kind = KINDS[index % len(KINDS)]
    groups = 2 if kind in ("group", "shuffle") else 1
    stage = StageSpec(kind, groups, 1 + index % 2)
    quant = QuantSpec(QUANTS[index % len(QUANTS)])
    return CandidateSpec(
        encoder=(StageSpec(), stage, stage), bottleneck=stage, decoder=(stage, stage, StageSpec()),
        base_width=8 * (1 + index % 3), input_size=64, quant=quant,
    )


def attrs_for(spec: CandidateSpec, dice: float, latency: float, size_kb: float, **extra) -> dict:
    attrs = {
        "spec": spec.to_dict(), "summary": spec.summary, "kinds": list(spec.kinds), "quant": spec.quant.mode,
        "dice": dice, "float_dice": min(1.0, dice + 0.01), "iou": dice * 0.8,
        "latency_ms": latency, "latency_p10_ms": latency * 0.95, "latency_p90_ms": latency * 1.1,
        "latency_cv": 0.04, "device": "local-cpu",
        "size_bytes": int(size_kb * 1024), "params": int(size_kb * 250), "macs": int(size_kb * 90_000),
        "peak_memory_bytes": 2_000_000, "dice_history": [dice * f for f in (0.5, 0.8, 0.95, 1.0)],
        "seconds": {"train": 12.0, "convert": 1.5, "latency": 2.0, "total": 15.5},
    }
    attrs.update(extra)
    return attrs


def add_trial(study: optuna.Study, index: int, seed: int = 0, **extra) -> optuna.trial.FrozenTrial:
    """Add one COMPLETE trial whose numbers follow ``index`` (deterministic)."""
    rng = random.Random(seed * 1000 + index)
    spec = spec_for(index)
    dice = round(rng.uniform(0.55, 0.92), 4)
    latency = round(rng.uniform(4.0, 35.0), 3)
    size_kb = round(rng.uniform(40.0, 900.0), 2)
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, values=[dice, latency, size_kb],
        user_attrs=attrs_for(spec, dice, latency, size_kb, **extra),
    )
    study.add_trial(trial)
    return study.trials[-1]


def sample_study(url: str, name: str = "demo", complete: int = 10, seed: int = 0) -> optuna.Study:
    """``complete`` COMPLETE trials (two of them presets, one infeasible) plus a FAIL and a PRUNED one."""
    study = create_study(url, name)
    for index in range(complete - 3):
        add_trial(study, index, seed)
    add_preset(study, "unet-standard", uniform("standard", depth=3, base_width=16, input_size=64), 0.90, 30.0, 1900.0)
    add_preset(study, "unet-depthwise", uniform("depthwise", depth=3, base_width=16, input_size=64), 0.86, 12.0, 300.0)
    spec = spec_for(99)
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, values=[0.0, 55.0, 700.0],
        user_attrs=attrs_for(spec, 0.0, 55.0, 700.0, infeasible="latency 55 ms > max 40 ms"),
        constraints={"latency": 15.0},
    ))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"error": "NaN loss"}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED,
                                              user_attrs={"stopped_early": "Dice below 0.3 after 2 epochs"}))
    return study


def add_preset(study, name, spec, dice, latency, size_kb):
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, values=[dice, latency, size_kb],
        user_attrs=attrs_for(spec, dice, latency, size_kb, preset=name),
    ))


def png(array) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def add_results(url: str, trial, tflite: bytes, samples: int = 40) -> str:
    """Store an artifact, one measurement with timing samples and two previews for ``trial``; return the SHA-256."""
    import numpy as np

    from studies.store import ResultStore

    rng = np.random.default_rng(trial.number)
    image = (rng.random((32, 32, 3)) * 255).astype("uint8")
    mask = np.zeros((32, 32), "uint8")
    mask[8:24, 8:24] = 255
    with ResultStore(url) as store:
        digest = store.save_artifact(trial._trial_id, "demo", trial.number, tflite)
        store.save_measurement(
            trial._trial_id, "local", {"machine": "x86_64", "threads": 2}, {"runs": samples, "warmup": 5},
            {"p50_ms": 27.5, "p90_ms": 30.1, "samples_ms": [round(float(v), 3) for v in rng.normal(27.5, 1.5, samples)]},
        )
        store.save_previews(trial._trial_id, [(png(image), png(mask), png(mask)), (png(image[::-1]), png(mask), png(mask.T))])
    return digest


SPREAD_TEXTS = {0: ("0.720 ± 0.020", "0.690 ± 0.030", "10.00 ± 0.13"), 1: ("0.600", None, "5.00")}
"""What ``spread_study``'s trials 0 and 1 show: Dice, test Dice and latency with their spreads."""


def spread_study(url: str, name: str = "spread") -> optuna.Study:
    """Trial 0 with a Dice interval, a test Dice with its own, and a latency spread (CV 0.1 over 100
    runs: 10 ms * 1.2533 * 0.1 / 10 = 0.13); trial 1 stored before any of these were (bare values);
    trial 2 within trial 0's uncertainty in every objective (the same size): a tie on the front."""
    study = create_study(url, name, config={})
    measured = {"dice_ci95": [0.70, 0.74], "latency_cv": 0.1, "latency_runs": 100}
    for dice, latency, size, extra in (
        (0.72, 10.0, 100.0, {**measured, "test_dice": 0.69, "test_dice_ci95": [0.66, 0.72]}),
        (0.60, 5.0, 50.0, {"latency_cv": None}),
        (0.715, 10.05, 100.0, measured),
    ):
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE, values=[dice, latency, size],
            user_attrs=attrs_for(spec_for(len(study.trials)), dice, latency, size, **extra)))
    return study
