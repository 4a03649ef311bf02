"""Retrain a trial's candidate before export (``search export --retrain-epochs E``).

:func:`make_retrain` returns the ``retrain(spec, point) -> (tflite, final)`` function that
:func:`studies.export.export` calls (``studies`` never imports ``evaluators``; this module does).
It reloads the study's data (or ``--data``) at the spec's input size, trains the spec for
``epochs`` on ALL of it, converts with the spec's own quant settings (calibrating on the same
images), then measures Dice on the TFLite model and latency on the study's device again.

All the data means the search's train and validation splits together: the exported model should
learn from every labelled image. The Dice and IoU in ``final`` are therefore computed on the
search's validation split, which the retrained model has seen: a sanity figure (did training and
conversion work), not a held-out estimate. ``final["dice_held_out"]`` is ``False`` and
``final["dice_note"]`` says so; the held-out figure is the search-time ``metrics.dice``.

Progress (one line per epoch, then conversion, Dice and latency) goes to ``err`` (stderr). With
``quiet_native=True`` what TensorFlow and LiteRT write to the process's stderr (C++ logs,
converter chatter, Python warnings) goes to a log file instead, kept and named only on failure.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from search.config import SearchConfig
from search.native_log import native_stderr_to_log


def study_config(study) -> SearchConfig:
    """The configuration the study was made with (``study.user_attrs["config"]``)."""
    stored = study.user_attrs.get("config")
    if not isinstance(stored, dict):
        raise ValueError(
            f"study {study.study_name} has no nas-lite configuration (it was not made by 'search start'), "
            "so it cannot be retrained; export it without --retrain-epochs"
        )
    return SearchConfig.from_stored(stored)


def make_retrain(
    config: SearchConfig,
    epochs: int,
    *,
    data: str | None = None,
    devices: list[str] | None = None,
    device_token: str | None = None,
    threads: int | None = None,
    err=None,
    quiet_native: bool = False,
):
    """``retrain(spec, point) -> (tflite_bytes, final_metrics)`` for :func:`studies.export.export`.

    ``config``: the study's :class:`SearchConfig` (data, seed, batch size, synthetic count, data
    limit, devices, threads). ``data`` overrides the study's dataset (a folder, or
    ``"synthetic"``); the study's ``--data-limit`` applies only to the study's own dataset.
    ``devices`` and ``threads`` override the study's; ``device_token`` defaults to the
    ``NAS_LITE_DEVICE_TOKEN`` environment variable. Progress lines go to ``err`` (default
    ``sys.stderr``); ``quiet_native``: see the module docstring.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"--retrain-epochs: must be a whole number of at least 1, got {epochs}")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads: must be at least 1, got {threads}")
    source = config.data if data is None else str(data)
    limit = config.data_limit if source == config.data else None
    urls = list(config.devices if devices is None else devices)
    threads = threads or config.threads

    def retrain(spec, point) -> tuple[bytes, dict[str, Any]]:
        with native_stderr_to_log(quiet_native, err or sys.stderr, "retrain") as stream:
            say = lambda text: print(f"retrain: {text}", file=stream, flush=True)  # noqa: E731
            return _retrain(spec, point, say)

    def _retrain(spec, point, say):
        from evaluators.data import load_dataset

        dataset = load_dataset(
            source, spec.input_size, spec.input_channels, seed=config.seed,
            synthetic_count=config.synthetic_count, limit=limit,
        )
        for note in dataset.warnings:
            say(f"warning: {note}")
        everything = all_data(dataset)
        say(f"trial {point.number} ({point.summary or spec.summary}), {epochs} epoch(s) on all "
            f"{len(everything.train_images)} images of {dataset.name}, batch {config.batch_size}, seed {config.seed}")
        return retrain_spec(spec, dataset, everything, epochs, config, urls, device_token, threads, say)

    return retrain


def all_data(dataset):
    """A dataset whose train split is every image (train + validation); validation stays as it was."""
    import numpy as np

    from evaluators.data import Dataset

    return Dataset(
        np.concatenate([dataset.train_images, dataset.val_images]),
        np.concatenate([dataset.train_masks, dataset.val_masks]),
        dataset.val_images, dataset.val_masks, f"{dataset.name} (all)", dataset.warnings,
    )


def retrain_spec(spec, dataset, everything, epochs, config, urls, device_token, threads, say) -> tuple[bytes, dict]:
    """Train, convert, score and time ``spec``; returns the ``.tflite`` bytes and the final figures."""
    from evaluators.accuracy import evaluate_keras, evaluate_tflite
    from evaluators.devices import open_devices
    from evaluators.runtime import Protocol
    from evaluators.train import fit_candidate
    from space.convert import to_tflite

    seconds = {}
    started = time.perf_counter()

    def progress(epoch: int, val_dice: float) -> None:
        elapsed = time.perf_counter() - started
        eta = elapsed / epoch * (epochs - epoch)
        say(f"epoch {epoch}/{epochs}: validation Dice {val_dice:.3f} (seen in training), "
            f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}")

    model, history, info = fit_candidate(spec, everything, epochs, callback=progress, **config.training)
    seconds["train"] = time.perf_counter() - started

    say(f"converting ({spec.quant.mode})")
    begin = time.perf_counter()
    tflite = to_tflite(model, spec.quant, everything.train_images)
    seconds["convert"] = time.perf_counter() - begin

    begin = time.perf_counter()
    figures = evaluate_tflite(tflite, dataset, threads)
    float_dice = evaluate_keras(model, dataset)["dice"]
    seconds["evaluate"] = time.perf_counter() - begin
    if not math.isfinite(figures["dice"]):
        raise RuntimeError("the retrained, converted model's Dice is not a number")
    say(f"TFLite Dice {figures['dice']:.3f} (float {float_dice:.3f}) on the validation split (seen in training)")

    device = open_devices(urls, device_token, threads)
    protocol = Protocol(threads=threads)
    say(f"measuring latency on {device.name} ({threads} thread(s))")
    begin = time.perf_counter()
    stats = device.measure(tflite, protocol)
    seconds["latency"] = time.perf_counter() - begin
    seconds["total"] = time.perf_counter() - started
    say(f"latency {stats['median_ms']:.2f} ms (p90 {stats['p90_ms']:.2f}), size {len(tflite) / 1024:.1f} KB")

    final = {
        "retrained": True,
        "epochs": epochs,
        "epochs_run": history.epochs,
        "data": dataset.name,
        "train_images": len(everything.train_images),
        "train_split": "all: the search's train and validation images",
        "dice_split": f"the search's validation split ({len(dataset.val_images)} images)",
        "dice_held_out": False,
        "dice_note": ("dice, iou and float_dice are on images the retrained model saw in training: a sanity "
                      "figure, not a held-out estimate; metrics.dice (search time) is the held-out one"),
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "lr_schedule": config.lr_schedule,
        "seed": config.seed,
        "dice": float(figures["dice"]),
        "iou": float(figures["iou"]),
        "float_dice": float(float_dice),
        "latency_ms": stats["median_ms"],
        "latency_p10_ms": stats["p10_ms"],
        "latency_p90_ms": stats["p90_ms"],
        "latency_cv": stats["cv"],
        "device": device.name,
        "device_info": device.info(),
        "protocol": protocol.to_dict(),
        "latency_stats": {k: v for k, v in stats.items() if k != "samples_ms"},
        "peak_memory_bytes": stats.get("peak_activation_bytes"),
        "size_bytes": len(tflite),
        "size_kb": len(tflite) / 1024,
        "history": history.to_dict(),
        "training": info,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    return tflite, _jsonable(final)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _jsonable(value):
    from search.trial import _jsonable as convert

    return convert(value)
