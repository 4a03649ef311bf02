"""Retrain a trial's candidate before export (``search export --retrain-epochs E``).

:func:`make_retrain` returns the ``retrain(spec, point) -> (tflite, final)`` function that
:func:`studies.export.export` calls (``studies`` never imports ``evaluators``; this module does).
It reloads the study's data (or ``--data``) at the spec's input size, trains the spec for
``epochs`` on ALL of it, converts with the spec's own quant settings (calibrating on the same
images), then measures Dice on the TFLite model and latency on the study's device again: one
confirming run (:func:`search.confirm.run_one`, a search trial's steps), with the same latency protocol.

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

import sys
from typing import Any

from search import pipeline
from search.config import SearchConfig
from search.confirm import run_one
from search.native_log import native_stderr_to_log
from studies.metrics import size_kb


def study_config(study, storage: str) -> SearchConfig:
    """The configuration the study was made with (``study.user_attrs["config"]``), in ``storage``, the
    database it was opened from: the stored URL is the one ``search start`` was given, which names
    another file once the database is moved or copied (or, relative, read from another folder)."""
    stored = study.user_attrs.get("config")
    if not isinstance(stored, dict):
        raise ValueError(
            f"study {study.study_name} has no nas-lite configuration (it was not made by 'search start'), "
            "so it cannot be retrained; export it without --retrain-epochs"
        )
    return SearchConfig.from_stored(stored).replace(storage=storage)


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
    if config.latency_clock == "cpu" and threads != 1:
        raise ValueError(f"--threads {threads}: the study times one LiteRT thread (--latency-clock cpu); use --threads 1")
    protocol = pipeline.latency_protocol(threads, config.latency_clock)  # the search's: figures stay comparable

    def retrain(spec, point) -> tuple[bytes, dict[str, Any]]:
        with native_stderr_to_log(quiet_native, err or sys.stderr, "retrain") as stream:
            say = lambda text: print(f"retrain: {text}", file=stream, flush=True)  # noqa: E731
            return _retrain(spec, point, say)

    def _retrain(spec, point, say):
        from evaluators.data import load_dataset
        from evaluators.devices import open_devices

        dataset = load_dataset(
            source, spec.input_size, spec.input_channels, seed=config.seed,
            synthetic_count=config.synthetic_count, limit=limit,
            val_fraction=config.val_fraction, test_fraction=config.test_fraction if source == config.data else 0.0,
        )
        for note in dataset.warnings:
            say(f"warning: {note}")
        everything = all_data(dataset)
        say(f"trial {point.number} ({point.summary or spec.summary}), {epochs} epoch(s) on all "
            f"{len(everything.train_images)} images of {dataset.name}, batch {config.batch_size}, seed {config.seed}")
        device = open_devices(urls, device_token, threads)
        return retrain_spec(spec, dataset, everything, epochs, config, device, protocol, say)

    return retrain


def all_data(dataset):
    """A dataset whose train split is the train and validation images; validation (and the held-out
    test split, if any) stay as they were."""
    import dataclasses

    import numpy as np

    return dataclasses.replace(
        dataset, name=f"{dataset.name} (all)",
        train_images=np.concatenate([dataset.train_images, dataset.val_images]),
        train_masks=np.concatenate([dataset.train_masks, dataset.val_masks]),
    )


def retrain_spec(spec, dataset, everything, epochs, config, device, protocol, say) -> tuple[bytes, dict]:
    """Train ``spec`` on ``everything``, convert, score and time it with the search's pipeline;
    returns the ``.tflite`` bytes and the final figures."""
    clock = pipeline.Stopwatch()

    def progress(epoch: int, val_dice: float) -> None:
        elapsed = clock.elapsed
        eta = elapsed / epoch * (epochs - epoch)
        say(f"epoch {epoch}/{epochs}: validation Dice {val_dice:.3f} (seen in training), "
            f"{pipeline.duration(elapsed)} elapsed, ETA {pipeline.duration(eta)}")

    say(f"training, then converting ({spec.quant.mode}), scoring and measuring latency on {device.name} "
        f"({protocol.threads} thread(s))")
    run = run_one(spec, everything, epochs, config.training, device, protocol, clock, progress)
    trained, evaluation = run.trained, run.evaluation
    figures = evaluation.figures
    say(f"TFLite Dice {figures['dice']:.3f} (float {figures['float_dice']:.3f}) on the validation split (seen in training)")
    say(f"latency {figures['latency_ms']:.2f} ms (p90 {figures['latency_p90_ms']:.2f}), size {size_kb(len(evaluation.tflite)):.1f} KB")
    final = _final(evaluation, trained, dataset, everything, epochs, config, device, protocol, clock)
    if run.has_test:  # the study's held-out test split: never trained on, so a held-out figure
        final["test_images"] = len(everything.test_images)
        say(f"TFLite Dice {figures['test_dice']:.3f} on the held-out test split ({len(everything.test_images)} images)")
    return evaluation.tflite, pipeline.jsonable(final)


def _final(evaluation, trained, dataset, everything, epochs, config, device, protocol, clock) -> dict:
    """The sidecar's ``final``: how the model was retrained, then the pipeline's figures."""
    return {
        "retrained": True,
        "epochs": epochs,
        "epochs_run": trained.history.epochs,
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
        **evaluation.figures,
        "size_kb": size_kb(len(evaluation.tflite)),
        "device_info": device.info(),
        "protocol": protocol.to_dict(),
        "latency_stats": {k: v for k, v in evaluation.latency.items() if k != "samples_ms"},
        "history": trained.history.to_dict(),
        "training": trained.info,
        "seconds": clock.summary(),
    }
