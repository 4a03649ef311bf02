"""What the dashboard and the report show, as plain JSON-ready data: trial rows and trial details.

Reads follow the conventions of :mod:`studies` (user attributes) and :mod:`studies.metrics`. Nothing here writes
to the database, and nothing here knows about HTTP or HTML.
"""

from __future__ import annotations

import datetime
from typing import Any

from studies import figures
from studies.confirmed_figures import study_confirmed_figures
from studies.metrics import size_kb, state_counts

COLUMNS = (
    ("number", "#", "int"),
    ("state", "state", "text"),
    ("dice", "Dice", "float4"),
    ("float_dice", "float Dice", "float4"),
    ("latency_ms", "p50 ms", "float3"),
    ("latency_p90_ms", "p90 ms", "float3"),
    ("size_kb", "size KB", "float1"),
    ("params", "params", "count"),
    ("macs", "MACs", "count"),
    ("stages", "kinds per stage", "text"),
    ("quant", "quant", "text"),
    ("seconds", "duration s", "float1"),
)
"""``(key, header, format)`` of the trial table, in order."""


def trial_row(trial, front: set[int]) -> dict[str, Any]:
    """One row of the trial table (``None`` where a value is unknown)."""
    attrs = trial.user_attrs
    return {
        "number": trial.number,
        "state": trial.state.name,
        "dice": attrs.get("dice"),
        "float_dice": attrs.get("float_dice"),
        "latency_ms": attrs.get("latency_ms"),
        "latency_p90_ms": attrs.get("latency_p90_ms"),
        "size_kb": size_kb(attrs.get("size_bytes")),
        "params": attrs.get("params"),
        "macs": attrs.get("macs"),
        "stages": stage_labels(attrs),
        "quant": attrs.get("quant"),
        "seconds": duration_seconds(trial),
        "front": trial.number in front,
        "preset": attrs.get("preset"),
        "note": attrs.get("infeasible") or attrs.get("error") or attrs.get("stopped_early"),
    }


def trial_rows(study, info: figures.ParetoInfo | None = None) -> list[dict[str, Any]]:
    """Rows of every trial of ``study``, by trial number."""
    info = info or figures.pareto_info(study)
    front = {p.number for p in info.front}
    return [trial_row(trial, front) for trial in study.get_trials(deepcopy=False)]


def stage_labels(attrs: dict) -> str:
    """Block labels per stage, ``encoder | bottleneck | decoder`` (decoder from the bottleneck out)."""
    spec = _spec(attrs)
    if spec is None:
        summary = attrs.get("summary") or ""
        return summary.split(" ")[0] if summary else ""
    encoder = " ".join(s.label for s in spec.encoder)
    decoder = " ".join(spec.decoder[level].label for level in reversed(range(spec.depth)))
    return f"{encoder} | {spec.bottleneck.label} | {decoder}"


def duration_seconds(trial) -> float | None:
    seconds = (trial.user_attrs.get("seconds") or {}).get("total")
    if isinstance(seconds, (int, float)):
        return float(seconds)
    if trial.datetime_start and trial.datetime_complete:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def study_version(study) -> str:
    """Changes whenever a trial is added or finishes: the dashboard's cue to redraw."""
    trials = study.get_trials(deepcopy=False)
    finished = [t.datetime_complete for t in trials if t.datetime_complete]
    latest = max(finished).isoformat() if finished else ""
    return f"{len(trials)}:{len(finished)}:{latest}"


def study_summary(study, info: figures.ParetoInfo) -> dict[str, Any]:
    """Counts by state, front size, hypervolume and the best value of each objective."""
    states = state_counts(study.get_trials(deepcopy=False))
    feasible = info.feasible
    _, volumes = figures.hypervolume_history(info)
    return {
        "trials": sum(states.values()),
        "states": states,
        "complete": states.get("COMPLETE", 0),
        "front": len(info.front),
        "hypervolume": volumes[-1] if volumes else None,
        "best_dice": max((p.dice for p in feasible), default=None),
        "min_latency_ms": min((p.latency_ms for p in feasible), default=None),
        "min_size_kb": min((p.size_kb for p in feasible), default=None),
        "constraints": info.limits,  # the key the page script reads
    }


def study_payload(study, color_by: str = "kind") -> dict[str, Any]:
    """Everything the study page draws: figures, table rows, summary and a version to poll."""
    info = figures.pareto_info(study)
    return {
        "study": study.study_name,
        "version": study_version(study),
        "color_by": color_by,
        "summary": study_summary(study, info),
        "figures": {**figures.study_figures(info, color_by), **study_confirmed_figures(study)},
        "columns": [list(column) for column in COLUMNS],
        "rows": trial_rows(study, info),
    }


# -- one trial ---------------------------------------------------------------------------------

def find_trial(study, number: int):
    """The trial ``number`` of ``study``; ``LookupError`` naming the range otherwise."""
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.number == number:
            return trial
    raise LookupError(f"study {study.study_name!r} has no trial #{number}; trials are #0 to #{len(trials) - 1}")


def spec_table(attrs: dict) -> tuple[list[list[Any]], list[tuple[str, Any]]]:
    """``(stage rows, global settings)`` of a trial's spec; rows are
    ``[stage, level, channels, kind, groups, dilation, label]``."""
    spec = _spec(attrs)
    if spec is None:
        return [], [("spec", attrs.get("summary") or "not recorded")]
    rows = [
        [name, level, spec.channels(level), stage.kind, stage.groups, stage.dilation, stage.label]
        for name, level, stage in spec.stages()
    ]
    settings = [
        ("summary", spec.summary), ("depth", spec.depth), ("base width", spec.base_width),
        ("input", f"{spec.input_size}x{spec.input_size}x{spec.input_channels}"),
        ("quant mode", spec.quant.mode), ("I/O type", spec.quant.io_type),
        ("calibration images", spec.quant.calibration_images), ("sparsity", spec.sparsity),
    ]
    return rows, settings


def metric_rows(trial) -> list[tuple[str, Any]]:
    """Every metric of a trial as ``(label, value)``; values unformatted."""
    attrs = trial.user_attrs
    size_bytes = attrs.get("size_bytes")
    rows = [
        ("Dice (TFLite, after PTQ)", attrs.get("dice")), ("Dice (Keras float)", attrs.get("float_dice")),
        ("IoU", attrs.get("iou")), ("latency p50 (ms)", attrs.get("latency_ms")),
        ("latency p10 (ms)", attrs.get("latency_p10_ms")), ("latency p90 (ms)", attrs.get("latency_p90_ms")),
        ("latency CV", attrs.get("latency_cv")), ("device", attrs.get("device")),
        ("size (bytes)", size_bytes), ("size (KB)", size_kb(size_bytes)),
        ("parameters", attrs.get("params")), ("MACs", attrs.get("macs")),
        ("peak memory (bytes)", attrs.get("peak_memory_bytes")),
    ]
    rows += [(f"time: {key} (s)", value) for key, value in (attrs.get("seconds") or {}).items()]
    rows += [("objective values", list(trial.values) if trial.values else None)]
    return [(label, value) for label, value in rows if value is not None]


def trial_detail(study, number: int, results=None) -> dict[str, Any]:
    """All a trial page shows. ``results`` is a :class:`studies.store.ResultStore` (or ``None``)."""
    trial = find_trial(study, number)
    attrs = trial.user_attrs
    stage_rows, settings = spec_table(attrs)
    measurements = _safe(lambda: results.measurements(trial._trial_id), []) if results else []
    previews = _safe(lambda: results.previews(trial._trial_id), []) if results else []
    artifact = _safe(lambda: results.artifact_info(trial._trial_id), None) if results else None
    return {
        "study": study.study_name,
        "number": trial.number,
        "trial_id": trial._trial_id,
        "state": trial.state.name,
        "preset": attrs.get("preset"),
        "summary": attrs.get("summary"),
        "reasons": [(key, attrs[key]) for key in ("infeasible", "error", "stopped_early") if attrs.get(key)],
        "started": _iso(trial.datetime_start),
        "completed": _iso(trial.datetime_complete),
        "duration_s": duration_seconds(trial),
        "stages": stage_rows,
        "settings": settings,
        "metrics": metric_rows(trial),
        "dice_history": list(attrs.get("dice_history") or []),
        "measurements": [_plain_measurement(m) for m in measurements],
        "latency_samples": latency_samples(measurements),
        "previews": len(previews),
        "artifact": {"sha256": artifact["sha256"], "size": artifact["size"]} if artifact else None,
        "params": dict(trial.params),
    }


def latency_samples(measurements: list[dict]) -> list[float]:
    """The timing samples (ms) of the latest measurement that kept them."""
    for measurement in reversed(measurements):
        samples = (measurement.get("stats") or {}).get("samples_ms")
        if samples:
            return [float(s) for s in samples]
    return []


def _plain_measurement(measurement: dict) -> dict:
    stats = {k: v for k, v in (measurement.get("stats") or {}).items() if k != "samples_ms"}
    return {
        "device": measurement.get("device"), "device_info": measurement.get("device_info") or {},
        "protocol": measurement.get("protocol") or {}, "stats": stats, "created": _iso(measurement.get("created")),
    }


def _spec(attrs: dict):
    from space.spec import CandidateSpec

    try:
        return CandidateSpec.from_dict(attrs["spec"])
    except (KeyError, TypeError, ValueError):
        return None


def _iso(moment) -> str | None:
    return moment.isoformat(sep=" ", timespec="seconds") if isinstance(moment, datetime.datetime) else None


def _safe(read, default):
    """A ResultStore read that must not break a page: a missing table or row gives ``default``."""
    import sqlalchemy.exc

    try:
        return read()
    except sqlalchemy.exc.SQLAlchemyError:
        return default
