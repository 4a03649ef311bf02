"""What the dashboard and the report show, as plain JSON-ready data: trial rows and trial details.

Reads follow the conventions of :mod:`studies` (user attributes) and :mod:`studies.metrics`. Nothing here writes
to the database, and nothing here knows about HTTP or HTML.
"""

from __future__ import annotations

import datetime
import shlex
from typing import Any

from studies import figures
from studies.confirmed_figures import study_confirmed_figures
from studies.front import TrialPoint, from_trial, objective_names
from studies.metrics import METRICS, size_kb, state_counts
from studies.plotinfo import spread_texts

COLUMNS = (
    ("number", "#", "int"),
    ("state", "state", "text"),
    ("dice", "Dice ± 95%", "spread"),
    ("test_dice", "test Dice ± 95%", "spread"),
    ("float_dice", "float Dice", "float4"),
    ("latency_ms", "p50 ms ± s.e.", "spread"),
    ("latency_p90_ms", "p90 ms", "float3"),
    ("size_kb", "size KB", "float1"),
    ("params", "params", "count"),
    ("macs", "MACs", "count"),
    ("stages", "kinds per stage", "text"),
    ("quant", "quant", "text"),
    ("seconds", "duration s", "float1"),
)
"""``(key, header, format)`` of the trial table, in order; a ``spread`` cell shows the row's
``texts[key]`` (:func:`studies.plotinfo.spread_texts`) and sorts by its value."""
OPTIONAL = ("test_dice",)
"""Columns shown only when some trial has a value in them (a study without a test split has no test Dice)."""


EXPORT_OUTPUT = "model.tflite"
PEAK_MEMORY = (("peak_rss_bytes", "process peak"), ("peak_activation_bytes", "activations"))
"""Peak-memory figures a measurement's statistics may hold, by preference, and what each counts."""


def trial_row(trial, point: TrialPoint, front: dict[int, tuple[int, ...]],
              picks: dict[int, list[str]] | None = None) -> dict[str, Any]:
    """One row of the trial table (``None`` where a value is unknown) of an Optuna trial and its
    :class:`studies.front.TrialPoint`; ``front`` maps each front member to the members it ties with,
    ``picks`` a trial number to what it is recommended as (``knee``, ``best Dice``, ``fastest``)."""
    attrs = trial.user_attrs
    return {
        "number": trial.number,
        "state": trial.state.name,
        "dice": attrs.get("dice"),
        "test_dice": attrs.get("test_dice"),
        "texts": spread_texts(point),
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
        "ties": list(front.get(trial.number, ())),
        "picks": (picks or {}).get(trial.number, []),
        "preset": attrs.get("preset"),
        "note": attrs.get("infeasible") or attrs.get("error") or attrs.get("stopped_early"),
    }


def trial_rows(study, info: figures.ParetoInfo | None = None) -> list[dict[str, Any]]:
    """Rows of every trial of ``study``, by trial number."""
    info = info or figures.pareto_info(study)
    front = {p.number: p.ties for p in info.front}
    picks = {r.point.number: r.labels for r in figures.recommendations(info)}
    points = {p.number: p for p in info.trials}
    return [trial_row(trial, points[trial.number], front, picks) for trial in study.get_trials(deepcopy=False)]


def columns(rows: list[dict[str, Any]]) -> list[list[str]]:
    """:data:`COLUMNS` without the :data:`OPTIONAL` ones no row has a value in."""
    return [list(column) for column in COLUMNS
            if column[0] not in OPTIONAL or any(row.get(column[0]) is not None for row in rows)]


def export_command(study_name: str, storage: str, *, trial: int | None = None, pick: str | None = None,
                   output: str = EXPORT_OUTPUT) -> str:
    """The ``search export`` line that writes that trial (``--trial N``) or the pick (``--pick RULE``)."""
    which = ["--trial", str(trial)] if pick is None else ["--pick", pick]
    words = ["search", "export", "--study", study_name, "--storage", storage, *which, "-o", output]
    return shlex.join(words)


def recommended(info: figures.ParetoInfo, storage: str) -> list[dict[str, Any]]:
    """The recommended trials (:func:`studies.plotinfo.recommendations`) with their export commands:
    by number (this very trial) and by each pick rule that chose it (whatever the study then holds)."""
    return [
        {
            "number": r.point.number, "labels": r.labels, "rules": list(r.rules), "preset": r.point.preset,
            "dice": r.point.dice, "latency_ms": r.point.latency_ms, "size_kb": r.point.size_kb, "texts": r.point.texts,
            "kind": r.point.kind, "quant": r.point.quant,
            "command": export_command(info.study_name, storage, trial=r.point.number),
            "pick_commands": [export_command(info.study_name, storage, pick=rule) for rule in r.rules],
        }
        for r in figures.recommendations(info)
    ]


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
    best = max(feasible, key=lambda p: (p.dice, -p.number), default=None)
    fastest = min(feasible, key=lambda p: (p.latency_ms, p.number), default=None)
    return {
        "trials": sum(states.values()),
        "states": states,
        "complete": states.get("COMPLETE", 0),
        "front": len(info.front),
        "hypervolume": volumes[-1] if volumes else None,
        "best_dice": best.dice if best else None,
        "best_dice_text": best.texts["dice"] if best else None,
        "min_latency_ms": fastest.latency_ms if fastest else None,
        "min_latency_text": fastest.texts["latency_ms"] if fastest else None,
        "min_size_kb": min((p.size_kb for p in feasible), default=None),
        "constraints": info.limits,  # the key the page script reads
    }


def study_payload(study, storage: str, color_by: str = "kind") -> dict[str, Any]:
    """Everything the study page draws: figures, table rows, summary, the recommended trials with
    their export commands for ``storage`` (the study's URL), and a version to poll."""
    info = figures.pareto_info(study)
    rows = trial_rows(study, info)
    return {
        "study": study.study_name,
        "version": study_version(study),
        "color_by": color_by,
        "summary": study_summary(study, info),
        "figures": {**figures.study_figures(info, color_by), **study_confirmed_figures(study)},
        "columns": columns(rows),
        "rows": rows,
        "recommended": recommended(info, storage),
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
        ("channel keep", spec.channel_keep), ("rank fraction", spec.rank_fraction),
    ]
    return rows, settings


def metric_rows(trial, measurements: list[dict] = (), objectives=tuple(METRICS)) -> list[tuple[str, Any]]:
    """Every metric of a trial as ``(label, value)``: Dice and latency as :func:`studies.plotinfo.spread_texts`
    writes them (of the study's ``objectives``), the others unformatted, with the peak memory of
    :func:`peak_memory` (from ``measurements`` of the result store, else the trial's attribute)."""
    attrs = trial.user_attrs
    size_bytes = attrs.get("size_bytes")
    texts = spread_texts(from_trial(trial, objectives))
    rows = [
        ("Dice (TFLite, after PTQ) ± 95% over images", texts.get("dice")),
        ("test Dice (held out) ± 95% over images", texts.get("test_dice")),
        ("Dice (Keras float)", attrs.get("float_dice")),
        ("IoU", attrs.get("iou")), ("latency p50 (ms) ± standard error", texts.get("latency_ms")),
        ("latency p10 (ms)", attrs.get("latency_p10_ms")), ("latency p90 (ms)", attrs.get("latency_p90_ms")),
        ("latency CV", attrs.get("latency_cv")), ("device", attrs.get("device")),
        ("size (bytes)", size_bytes), ("size (KB)", size_kb(size_bytes)),
        ("parameters", attrs.get("params")), ("MACs", attrs.get("macs")),
        peak_memory(attrs, list(measurements)) or ("peak memory", None),
    ]
    rows += [(f"time: {key} (s)", value) for key, value in (attrs.get("seconds") or {}).items()]
    rows += [("objective values", list(trial.values) if trial.values else None)]
    return [(label, value) for label, value in rows if value is not None]


def peak_memory(attrs: dict, measurements: list[dict]) -> tuple[str, str] | None:
    """``(label, text)`` of the peak memory the latest measurement that has one found on its device
    (:data:`PEAK_MEMORY`), else of the trial's ``peak_memory_bytes`` on its ``device``; ``None`` if neither."""
    found = [(m.get("device"), key, what, (m.get("stats") or {}).get(key))
             for m in reversed(measurements) for key, what in PEAK_MEMORY]
    found.append((attrs.get("device"), "peak_memory_bytes", "activations", attrs.get("peak_memory_bytes")))
    for device, _, what, value in found:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            where = f" on {device}" if device else ""
            return f"peak memory{where}", f"{value / 2**20:.2f} MiB ({what}, {int(value):,} bytes)"
    return None


def trial_export(study, number: int, storage: str) -> dict[str, Any]:
    """How to export trial ``number``: its command, what it is recommended as and the pick commands."""
    info = figures.pareto_info(study)
    mine = next((r for r in figures.recommendations(info) if r.point.number == number), None)
    rules = list(mine.rules) if mine else []
    return {
        "command": export_command(study.study_name, storage, trial=number),
        "labels": mine.labels if mine else [], "knee": info.knee == number,
        "pick_commands": [export_command(study.study_name, storage, pick=rule) for rule in rules],
    }


def trial_detail(study, number: int, storage: str, results=None) -> dict[str, Any]:
    """All a trial page shows. ``results`` is a :class:`studies.store.ResultStore` (or ``None``);
    ``storage`` the study's URL, for the export command."""
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
        "metrics": metric_rows(trial, measurements, objective_names(study) or tuple(METRICS)),
        "export": trial_export(study, trial.number, storage),
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
