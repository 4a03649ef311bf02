"""What makes one training step faster on this CPU: XLA, steps per execution, thread settings,
bfloat16 mixed precision (oneDNN runs it on AVX-512 BF16 and AMX where the CPU has them), and
TensorFlow's own Eigen kernels in place of oneDNN's (``TF_ENABLE_ONEDNN_OPTS=0``).

    python benchmarks/training_step.py [--size 128] [--images 96] [--batch 4] [--epochs 3] [--seeds 0] \\
        [--models unet:16,depthwise:8]

For unet and a light candidate (depthwise, width 8; ``--models``: any presets at a width), trains as ``evaluators.train.train`` does (the
same optimizer, schedule, loss and input pipeline) under each setting and prints the steady-state
milliseconds per step (epochs after the first, which includes tracing) and the ratio to the
default, with the host CPU and load. A setting is worth adopting at 1.2x or more at equal Dice;
the validation Dice after the last epoch is printed beside it (the same seeds for all; with
several ``--seeds``, which draw the initialisation and the order of the images, the mean and
spread over them, and the step time's mean).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._searches import host_line  # noqa: E402

SETTINGS = {
    "default": {},
    "xla": {"jit_compile": True},
    "steps_per_execution=8": {"steps_per_execution": 8},
    "threads 2/1": {"intra": 2, "inter": 1},
    "threads 1/1": {"intra": 1, "inter": 1},
    "mixed_bfloat16": {"policy": "mixed_bfloat16"},
    "default in a child": {"env": {}},  # the control for the settings a child process measures
    "oneDNN off": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
}


def run(spec, data, setting: dict, args) -> tuple[float, float]:
    from evaluators.accuracy import dice_iou, predict_keras
    from evaluators.train import bce_dice_loss, learning_rate_schedule, training_dataset, training_form
    from space import _tf
    from space.model import build

    tf, keras = _tf.tensorflow(), _tf.keras()
    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    keras.mixed_precision.set_global_policy(setting.get("policy", "float32"))
    try:
        model = build(spec, grouped=training_form(spec), seed=args.seed)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    steps = math.ceil(len(data["train_images"]) / args.batch)
    optimizer = keras.optimizers.legacy.Adam(learning_rate_schedule(2e-3, "cosine", steps * args.epochs))
    loss = lambda masks, predicted: bce_dice_loss(masks, tf.cast(predicted, tf.float32))  # noqa: E731
    model.compile(optimizer=optimizer, loss=loss, jit_compile=setting.get("jit_compile", False),
                  steps_per_execution=setting.get("steps_per_execution", 1))
    dataset = training_dataset(data["train_images"], data["train_masks"], args.batch, args.seed, args.epochs)
    stamps = []
    clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
    stamps.append(time.perf_counter())
    model.fit(dataset, epochs=args.epochs, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    per_step = (stamps[-1] - stamps[1]) / ((args.epochs - 1) * steps) * 1000
    dice, _ = dice_iou(predict_keras(model, data["val_images"]), data["val_masks"])
    return per_step, dice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--models", default="unet:16,depthwise:8", help="PRESET:WIDTH,...")
    args = parser.parse_args()
    from evaluators.data import load_dataset
    loaded = load_dataset(args.data, args.size, limit=args.images + 24, seed=0, synthetic_count=args.images + 24)
    data = {"train_images": loaded.train_images, "train_masks": loaded.train_masks,
            "val_images": loaded.val_images, "val_masks": loaded.val_masks}
    print(f"{host_line()}; {args.data} {len(loaded.train_images)} images "
          f"{args.size}x{args.size}, batch {args.batch}, {args.epochs} epochs (the first not timed)")
    for label in args.models.split(","):
        spec = model_spec(label, args.size)
        base = None
        for name in args.settings.split(","):
            runs = [_measure(label, spec, data, name, argparse.Namespace(**{**vars(args), "seed": int(seed)}))
                    for seed in args.seeds.split(",")]
            per_step, dice = statistics.mean(r[0] for r in runs), [r[1] for r in runs]
            base = base or per_step
            spread = f" ± {statistics.stdev(dice):.3f}" if len(dice) > 1 else ""
            print(f"{label:>13} | {name:<22} | {per_step:8.1f} ms/step | {base / per_step:4.2f}x | "
                  f"Dice {statistics.mean(dice):.3f}{spread} ({', '.join(f'{d:.3f}' for d in dice)})", flush=True)


def _measure(label: str, spec, data, name: str, args) -> tuple[float, float]:
    setting = SETTINGS[name]
    if "intra" in setting or "env" in setting:  # fixed once per process: measure in a child
        return _in_child(label, name, args)
    return run(spec, data, setting, args)


def _in_child(label: str, name: str, args) -> tuple[float, float]:
    import json
    import subprocess

    code = (f"import sys, json; sys.argv = ['x']; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import tensorflow as tf; s = {SETTINGS[name]!r}; "
            "tf.config.threading.set_intra_op_parallelism_threads(s.get('intra', 0)); "
            "tf.config.threading.set_inter_op_parallelism_threads(s.get('inter', 0)); "
            f"import training_step as t; print(json.dumps(t.child({label!r}, {vars(args)!r})))")
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **SETTINGS[name].get("env", {})}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def child(label: str, options: dict) -> tuple[float, float]:
    from types import SimpleNamespace

    from evaluators.data import load_dataset

    args = SimpleNamespace(**options)
    loaded = load_dataset(args.data, args.size, limit=args.images + 24, seed=0, synthetic_count=args.images + 24)
    data = {"train_images": loaded.train_images, "train_masks": loaded.train_masks,
            "val_images": loaded.val_images, "val_masks": loaded.val_masks}
    return run(model_spec(label, args.size), data, {}, args)


def model_spec(label: str, size: int):
    """``PRESET:WIDTH`` as a float spec (``unet:16`` is unet, ``depthwise:8`` the light candidate)."""
    import dataclasses

    from space.presets import preset

    name, width = label.split(":")
    return dataclasses.replace(preset(name, size, 3), base_width=int(width))


if __name__ == "__main__":
    main()
