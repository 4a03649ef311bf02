"""Make small studies the way the search loop writes them: optuna trials plus ResultStore rows."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna

from studies import METRICS

DATA = Path(__file__).parent / "data"
TINY_TFLITE = DATA / "tiny_int8io.tflite"  # space.build(uniform depth 3, width 4, 16x16) as int8 with int8 I/O
TINY_SPEC = DATA / "tiny_int8io.json"


def spec_dict() -> dict:
    import json

    return json.loads(TINY_SPEC.read_text())


def attrs(dice: float, latency: float, size_kb: float, **extra) -> dict:
    """User attributes following the conventions of :mod:`studies`."""
    from space import CandidateSpec

    spec = CandidateSpec.from_dict(spec_dict())
    base = {
        "spec": spec.to_dict(), "summary": spec.summary, "kinds": list(spec.kinds), "quant": spec.quant.mode,
        "dice": dice, "float_dice": dice + 0.01, "iou": dice * 0.9,
        "latency_ms": latency, "latency_p10_ms": latency * 0.9, "latency_p90_ms": latency * 1.1,
        "latency_cv": 0.05, "device": "local", "size_bytes": int(size_kb * 1024), "params": 1000, "macs": 20000,
        "seconds": {"train": 10.0, "convert": 2.0, "latency": 1.0, "total": 14.0}, "seconds_before": 0.5,
    }
    base.update(extra)
    return base


def make_study(storage, name: str, points: list[tuple[float, float, float]], **trial_extra) -> optuna.Study:
    """A study named ``name`` with one COMPLETE trial per ``(dice, latency_ms, size_kb)``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=name, directions=list(METRICS.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(METRICS))
    for dice, latency, size in points:
        study.add_trial(optuna.trial.create_trial(values=[dice, latency, size], user_attrs=attrs(dice, latency, size, **trial_extra)))
    return study
