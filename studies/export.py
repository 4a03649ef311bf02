"""Export one trial: its stored ``.tflite`` byte for byte, and a JSON sidecar saying how to use it.

:func:`select` chooses the trial (by number, or by a pick rule of :mod:`studies.pareto`, among the
candidates of :mod:`studies.front`),
:func:`sidecar` builds the description, :func:`export` writes both files atomically.

The sidecar (``model.json`` beside ``model.tflite``) holds: the spec and its quant settings, the
input size, channels, layout (NHWC) and normalisation (float images scaled to [0, 1]), the input
and output tensors' dtype and quantization (read from the model with LiteRT), the metrics with
the device they were measured on and every stored measurement, the study and trial ids, the
SHA-256 and the nas-lite version.

With ``--pick``, a study with confirmed trials (``search confirm``) is picked among those, by their
mean figures over seeds (:mod:`studies.confirmed`), and the file is the best seed's confirmed model;
the sidecar's ``figures`` says which figures chose it and which model it is.

Retraining before export needs ``evaluators``, which ``studies`` never imports: the caller passes a
``retrain(spec, point) -> (tflite_bytes, final_metrics)`` function instead (the hook for
``search export --retrain-epochs``); the sidecar then keeps the search-time and the final figures.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studies import pareto
from studies.front import TrialPoint, front, study_points
from studies.metrics import METRICS
from studies.files import write_pair
from studies.space import pruned_sha256

SIDECAR_FORMAT = "nas-lite-export/1"
NORMALISATION = "float images scaled to [0, 1] (pixel / 255), NHWC, batch 1"
METRIC_ATTRS = (
    "dice", "float_dice", "iou", "latency_ms", "latency_p10_ms", "latency_p90_ms", "latency_cv",
    "device", "size_bytes", "params", "macs", "peak_memory_bytes",
)
Retrain = Callable[[Any, TrialPoint], tuple[bytes, dict]]


@dataclasses.dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote."""

    model: Path
    sidecar: Path
    sha256: str
    point: TrialPoint
    rule: str | None
    confirmed: Any = None  # the studies.confirmed.Confirmed the pick chose by, if any


# -- choosing the trial --------------------------------------------------------------------------
def select(study, *, trial: int | None = None, pick: str | None = None) -> TrialPoint:
    """The trial numbered ``trial``, or the one ``pick`` chooses (exactly one of the two).

    Errors (``LookupError``): the study has no complete trial, no trial with that number, the
    trial is not complete, or no trial satisfies the pick (with the closest one named).
    A bad rule is a ``ValueError``.
    """
    if (trial is None) == (pick is None):
        raise ValueError("give either a trial number (--trial N) or a pick rule (--pick RULE)")
    points = study_points(study)
    if pick is not None:
        rule = pareto.parse_rule(pick)
    if not any(p.complete for p in points):
        raise LookupError(f"study {study.study_name} has no complete trial yet; let 'search start' finish one (see 'search status')")
    if pick is not None:
        return pareto.pick(points, rule)
    by_number = {p.number: p for p in points}
    if trial not in by_number:
        raise LookupError(f"study {study.study_name} has no trial {trial}; its trials are numbered 0 to {max(by_number)}")
    point = by_number[trial]
    if not point.complete:
        raise LookupError(f"trial {trial} of study {study.study_name} is {point.state}, not complete; choose a complete trial (see 'search status')")
    return point


# -- describing the model ------------------------------------------------------------------------
def _interpreter(tflite: bytes):
    from ai_edge_litert.interpreter import Interpreter  # on the host (studies may not import evaluators)

    return Interpreter(model_content=tflite)


def _tensor(detail: dict) -> dict[str, Any]:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = getattr(detail["dtype"], "__name__", str(detail["dtype"]))
    return {
        "name": detail.get("name"),
        "shape": [int(d) for d in detail["shape"]],
        "dtype": dtype,
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
    }


def io_details(tflite: bytes) -> dict[str, list[dict[str, Any]]]:
    """``{"inputs": [...], "outputs": [...]}``: name, shape, dtype and quantization (scale, zero point, or ``None``)."""
    interpreter = _interpreter(tflite)
    return {
        "inputs": [_tensor(d) for d in interpreter.get_input_details()],
        "outputs": [_tensor(d) for d in interpreter.get_output_details()],
    }


def _input_section(tensor: dict[str, Any]) -> dict[str, Any]:
    _, height, width, channels = (tensor["shape"] + [None] * 4)[:4]
    quant = tensor["quantization"]
    how = "feed x = pixel / 255 as float32"
    if quant:
        how = (f"x = pixel / 255, then q = round(x / {quant['scale']:.9g}) + {quant['zero_point']}, "
               f"clipped to the range of {tensor['dtype']}")
    return {**tensor, "layout": "NHWC", "height": height, "width": width, "channels": channels,
            "normalisation": NORMALISATION, "how": how}


def _output_section(tensor: dict[str, Any]) -> dict[str, Any]:
    quant = tensor["quantization"]
    how = "p = output"
    if quant:
        how = f"p = (q - {quant['zero_point']}) * {quant['scale']:.9g}"
    return {**tensor, "layout": "NHWC", "meaning": "foreground probability per pixel (sigmoid); mask = p >= 0.5",
            "how": how}


def _metrics(point: TrialPoint) -> dict[str, Any]:
    metrics = {key: point.attrs[key] for key in METRIC_ATTRS if key in point.attrs}
    metrics.update({m: point.values[m] for m in METRICS if m in point.values})
    return metrics


def _jsonable(measurement: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime.datetime) else v for k, v in measurement.items()}


def sidecar(
    study, point: TrialPoint, tflite: bytes, measurements: list[dict], *,
    version: str, rule: str | None = None, search_sha256: str | None = None, final: dict | None = None,
    chosen=None,
) -> dict[str, Any]:
    """The sidecar of ``tflite``, the model of ``point`` (see the module docstring for the fields);
    ``chosen``: the ``studies.confirmed.Confirmed`` a pick chose it by, if any (see :func:`figures_note`)."""
    from space import CandidateSpec

    spec = point.attrs.get("spec")
    if spec is not None:
        spec = CandidateSpec.from_dict(spec).to_dict()  # validated, complete with defaults
    details = io_details(tflite)
    digest = hashlib.sha256(tflite).hexdigest()
    members = {p.number for p in front(study_points(study))}
    return {
        "format": SIDECAR_FORMAT,
        "nas_lite_version": version,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sha256": digest,
        "size_bytes": len(tflite),
        "study": {
            "name": study.study_name, "trial_number": point.number, "trial_id": point.trial_id,
            "state": point.state, "feasible": point.feasible, "on_front": point.number in members,
            "preset": point.preset, "pick": rule,
        },
        "summary": point.summary,
        "spec": spec,
        "quant": spec["quant"] if spec else {"mode": point.quant or None},
        "input": _input_section(details["inputs"][0]),
        "output": _output_section(details["outputs"][0]),
        "metrics": _metrics(point),
        "measurements": [_jsonable(m) for m in measurements],
        "search_sha256": search_sha256 or digest,
        "final": final,
        **figures_note(study, chosen),
    }


# -- writing -------------------------------------------------------------------------------------
def sidecar_path(output: Path) -> Path:
    """``model.tflite`` -> ``model.json`` (same folder, same stem)."""
    return output.with_suffix(".json")


def check_output(output: str | os.PathLike, force: bool = False) -> Path:
    """The output path, if its folder exists and it names a file; errors for people otherwise.
    Without ``force``, a file there that nas-lite did not export (the model without a nas-lite
    sidecar beside it, or a ``.json`` that is not one) is refused rather than replaced."""
    output = Path(output)
    folder = output.absolute().parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder {folder} does not exist; create it (mkdir -p {folder}) or choose another -o")
    if output.is_dir():
        raise IsADirectoryError(f"output {output} is a folder; name the model file, e.g. -o {output / 'model.tflite'}")
    if output.suffix.lower() == ".json":
        raise ValueError(f"output {output} would be overwritten by its own sidecar; name the model file *.tflite")
    if not force:
        _check_ours(output)
    return output


def _check_ours(output: Path) -> None:
    described = sidecar_path(output)
    if described.exists() and not _is_sidecar(described):
        raise FileExistsError(f"{described} exists and is not a nas-lite sidecar, and the export would replace it; "
                              "choose another -o, or pass --force to replace it")
    if output.exists() and not described.exists():
        raise FileExistsError(f"{output} exists and was not exported by nas-lite (no sidecar {described.name} beside it); "
                              "choose another -o, or pass --force to replace it")


def _is_sidecar(path: Path) -> bool:
    try:
        description = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(description, dict) and str(description.get("format", "")).startswith("nas-lite-export/")


def nas_lite_version() -> str:
    """The installed nas-lite version, or ``"unknown"`` (commands pass ``search.__version__``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nas-lite")
    except PackageNotFoundError:
        return "unknown"


def _no_model(study, point: TrialPoint) -> str:
    where = f"trial {point.number} of study {study.study_name}"
    if pruned_sha256(study, point.number):
        return (f"the model of {where} was deleted by 'search prune'; get it back by retraining its spec: "
                f"search export --trial {point.number} --retrain-epochs E -o model.tflite")
    return f"{where} has no stored .tflite; choose another trial (see 'search status')"


def stored_artifact(study, store, point: TrialPoint, *, missing_ok: bool = False) -> tuple[bytes | None, str | None]:
    """The trial's stored ``.tflite`` and its SHA-256, checked; ``LookupError`` if none is stored
    (with ``missing_ok``: ``None`` and the SHA-256 'search prune' recorded, if any), ``RuntimeError``
    if the bytes do not match their digest."""
    tflite = store.artifact(point.trial_id)
    if tflite is None:
        if missing_ok:
            return None, pruned_sha256(study, point.number)
        raise LookupError(_no_model(study, point))
    stored_sha = store.artifact_sha256(point.trial_id)
    if hashlib.sha256(tflite).hexdigest() != stored_sha:
        raise RuntimeError(f"the stored .tflite of trial {point.number} does not match its SHA-256 {stored_sha}; the database is damaged")
    return tflite, stored_sha


def download_sidecar(study, store, trial: int, version: str | None = None) -> dict[str, Any]:
    """The sidecar ``export(study, store, ..., trial=trial)`` would write, without writing anything
    (the dashboard offers it beside the ``.tflite``); errors as :func:`export`'s."""
    point = select(study, trial=trial)
    tflite, stored_sha = stored_artifact(study, store, point)
    return sidecar(study, point, tflite, store.measurements(point.trial_id),
                   version=version or nas_lite_version(), search_sha256=stored_sha)


def export(
    study, store, output: str | os.PathLike, *,
    trial: int | None = None, pick: str | None = None,
    version: str | None = None, retrain: Retrain | None = None, force: bool = False,
) -> Exported:
    """Write the chosen trial's artifact to ``output`` and its sidecar beside it.

    ``store`` is a :class:`studies.store.ResultStore` on the study's database. Without
    ``retrain`` the file is the stored artifact byte for byte (its SHA-256 equals the stored one).
    With ``retrain(spec, point) -> (tflite, final_metrics)`` the file is the retrained model and
    the sidecar's ``final`` holds ``final_metrics``. Errors: see :func:`select` and
    :func:`check_output` (``force`` replaces files nas-lite did not write); a trial without a stored artifact (say, deleted by ``search prune``) is a
    ``LookupError`` unless ``retrain`` makes its model again.
    """
    output = check_output(output, force)
    chosen = pick_confirmed(study, store, pick) if pick is not None else None
    point = select(study, trial=chosen.number if chosen else trial, pick=None if chosen else pick)
    tflite, stored_sha = stored_artifact(study, store, point, missing_ok=retrain is not None or chosen is not None)
    if chosen is not None:
        tflite = store.confirmation_model(study.study_name, chosen.subject, chosen.epochs, chosen.best_seed)
    final = None
    if retrain is not None:
        from space import CandidateSpec

        if not isinstance(point.attrs.get("spec"), dict):
            raise LookupError(f"trial {point.number} of study {study.study_name} has no stored spec, so it cannot be retrained; export it without retraining")
        tflite, final = retrain(CandidateSpec.from_dict(point.attrs["spec"]), point)
    description = sidecar(
        study, point, tflite, store.measurements(point.trial_id),
        version=version or nas_lite_version(), rule=pick, search_sha256=stored_sha, final=final, chosen=chosen,
    )
    write_pair(output, tflite, sidecar_path(output), (json.dumps(description, indent=2, default=str) + "\n").encode())
    return Exported(model=output, sidecar=sidecar_path(output), sha256=description["sha256"], point=point, rule=pick,
                    confirmed=chosen)


def pick_confirmed(study, store, pick: str):
    """The confirmed trial ``pick`` chooses among the confirmed figures (means over seeds, see
    :mod:`studies.confirmed`), or ``None`` when no trial of the study is confirmed."""
    from studies.confirmed import confirmed

    rule = pareto.parse_rule(pick)
    trials = [c for c in confirmed(study, store.confirmations(study.study_name))
              if c.number is not None and c.search is not None and c.search.complete]
    if not trials:
        return None
    by_number = {c.number: c for c in trials}
    return by_number[pareto.pick([c.point for c in trials], rule).number]


def figures_note(study, chosen) -> dict[str, Any]:
    """The sidecar's ``figures`` (which figures chose the model and which model this is) and, for a
    confirmed pick, ``confirmed`` (means, spreads and each seed's figures)."""
    if chosen is None:
        config = study.user_attrs.get("config") or {}
        return {"figures": {"source": "search", "epochs": config.get("epochs"), "seeds": [config.get("seed", 0)],
                            "dice": "validation Dice of one training", "model": "the search's stored model"}}
    return {
        "figures": {"source": "confirmed", "epochs": chosen.epochs, "seeds": list(chosen.seeds), "best_seed": chosen.best_seed,
                    "dice": f"mean {chosen.dice_split} Dice over the seeds",
                    "model": f"the confirmed model of seed {chosen.best_seed} (the highest validation Dice)",
                    "among": "the confirmed trials of the study ('search confirm'); metrics holds the search-time figures"},
        "confirmed": chosen.to_dict(),
    }
