"""Calibrate a device's latency model: time generated candidates that span the search space, fit
:class:`evaluators.latency_model.LatencyModel` on four fifths, check it on the other fifth, and
keep it in the study database, keyed by the device's name.

Needs TensorFlow (candidates are built and converted here); the model itself does not.
Measurements are stored as they come, so an interrupted calibration continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from evaluators import latency_model
from evaluators.latency_model import LatencyModel, OpFeatures

CALIBRATION_IMAGES = 8  # random images: enough for the int8 converter, and timing does not care


class _RandomTrial:
    """Answers ``space.sample``'s questions with seeded random choices (no Optuna study needed)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def suggest_categorical(self, name, choices):
        return choices[int(self.rng.integers(len(choices)))]


def calibration_specs(count: int, image_size: int, seed: int = 0, search_space=None) -> list:
    """``count`` distinct specs: every fifth a preset (the hand-designed corners), the rest sampled."""
    from space.presets import PRESETS, preset, presets_for
    from space.sampling import SearchSpace, sample
    from space.spec import halvable

    search_space = search_space or SearchSpace()
    rng = np.random.default_rng(seed)
    names = presets_for(search_space.block_kinds)
    presets = [name for name in rng.permutation(names) if halvable(image_size, PRESETS[name].depth)]
    specs: dict[str, object] = {}
    for _ in range(100 * count):
        if len(specs) == count:
            break
        if len(specs) % 5 == 4 and presets:
            spec = preset(presets.pop(), input_size=image_size)
        else:
            spec = sample(_RandomTrial(rng), search_space, input_size=image_size)
        specs.setdefault(spec.to_json(), spec)
    return list(specs.values())


def check_image_size(image_size: int) -> None:
    if image_size < 32 or image_size % 16:
        raise ValueError(f"--image-size: {image_size} cannot be halved 4 times; use a multiple of 16 from 32, e.g. 128")


def tflite_of(spec, seed: int = 0) -> bytes:
    """The untrained model of ``spec``, converted in its quantization mode (latency needs no training)."""
    from space import _tf
    from space.convert import to_tflite
    from space.model import build

    _tf.keras().backend.clear_session()  # hundreds of builds in one process otherwise slow down and grow
    images = np.random.default_rng(seed).random((CALIBRATION_IMAGES, spec.input_size, spec.input_size,
                                                 spec.input_channels), dtype=np.float32)
    return to_tflite(build(spec, seed=seed), spec.quant, images)


def sample_key(spec, protocol: dict) -> str:
    text = json.dumps([spec.to_json(), protocol, latency_model.FEATURE_VERSION], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def measure_sample(spec, device, protocol, keep_model=None) -> dict:
    """One calibration sample: the spec, its ops' features, the whole-model totals and the measured
    stats. ``keep_model``: a path to write the ``.tflite`` to."""
    model_bytes = tflite_of(spec)
    if keep_model is not None:
        keep_model.write_bytes(model_bytes)
    ops = latency_model.read_ops(model_bytes)
    stats = device.measure(model_bytes, protocol)
    keep = ("median_ms", "p10_ms", "p90_ms", "mean_ms", "cv", "runs", "attempts", "xnnpack_error", "delegate")
    return {"spec": spec.to_dict(), "summary": spec.summary, "ops": [dataclasses.asdict(op) for op in ops],
            **latency_model.totals(ops), "stats": {key: stats.get(key) for key in keep}}


def sample_ops(sample: dict) -> list[OpFeatures]:
    return [OpFeatures.from_dict(op) for op in sample["ops"]]


def evaluate(samples: list[dict], seed: int = 0, about: dict | None = None) -> LatencyModel:
    """Fit on four fifths, measure accuracy on the held-out fifth (and that of the MACs-only and
    params-only lines), then refit on every sample: the stored model uses all the measurements,
    its ``accuracy`` is that of the same method on models it did not see."""
    if len(samples) < 5:
        raise ValueError(f"calibration: {len(samples)} models measured; needs at least 5 (one fifth is held out)")
    order = np.random.default_rng(seed).permutation(len(samples))
    held, used = order[: len(samples) // 5], order[len(samples) // 5:]
    rows = [sample_ops(sample) for sample in samples]
    measured = np.array([sample["stats"]["median_ms"] for sample in samples])
    partial = latency_model.fit([rows[i] for i in used], measured[used])
    result = {"held_out": latency_model.accuracy([partial.predict_ops(rows[i]) for i in held], measured[held])}
    for baseline in ("macs", "params"):
        x = np.array([sample[baseline] for sample in samples], dtype=np.float64)
        slope, intercept = latency_model.fit_line(x[used], measured[used])
        result[f"{baseline}_baseline"] = latency_model.accuracy(slope * x[held] + intercept, measured[held])
    return latency_model.fit(rows, measured, accuracy=result, **(about or {}))


# -- storage -------------------------------------------------------------------------------------
def stored_samples(store, device: str) -> dict[str, dict]:
    from sqlalchemy import select

    from studies.records import CalibrationSample

    with store.session() as session:
        rows = session.scalars(select(CalibrationSample).where(CalibrationSample.device == device)).all()
        return {row.key: row.sample for row in rows}


def save_sample(store, device: str, key: str, sample: dict) -> None:
    from studies.records import CalibrationSample

    with store.session() as session:
        session.add(CalibrationSample(device=device, key=key, sample=sample))


def save_model(store, device: str, model: LatencyModel) -> None:
    from studies.records import LatencyModelRecord

    with store.session() as session:
        session.add(LatencyModelRecord(device=device, model=json.loads(model.to_json())))


def stored_models(store) -> list[tuple[str, str, LatencyModel]]:
    """``(device, created, model)`` of the newest model of every device, by device name."""
    from sqlalchemy import select

    from studies.records import LatencyModelRecord

    with store.session() as session:
        rows = session.scalars(select(LatencyModelRecord).order_by(LatencyModelRecord.id)).all()
        newest = {row.device: row for row in rows}
        return [(name, f"{row.created:%Y-%m-%d %H:%M}", LatencyModel.from_json(json.dumps(row.model)))
                for name, row in sorted(newest.items())]


def latency_model_for(store, device: str) -> LatencyModel | None:
    """The newest stored model of ``device`` (a device's ``name``), or None: what a search that
    predicts latency before measuring it reads."""
    return next((model for name, _, model in stored_models(store) if name == device), None)


def study_device(config, store):
    """``(device, model)``: what a study's trials are timed on, and the stored latency model of that
    device (``None`` if it was never calibrated). With ``--latency predicted:NAME`` the device is
    that model (:class:`evaluators.devices.PredictedDevice`); the board need not be attached."""
    from evaluators.devices import PredictedDevice, open_devices

    if config.predicted_device:
        name = config.predicted_device
        model = latency_model_for(store, name)
        if model is None:
            known = ", ".join(device for device, _, _ in stored_models(store)) or "none yet"
            raise ValueError(f"--latency predicted:{name}: no latency model of device {name!r} in the storage "
                             f"(calibrated: {known}); run 'search device calibrate --device URL|local' first")
        return PredictedDevice(name, model), model
    device = open_devices(list(config.devices), config.device_token, config.threads)
    return device, latency_model_for(store, device.name)
