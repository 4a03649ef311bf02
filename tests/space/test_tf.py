"""TensorFlow comes with tf-keras (Keras 2) however nas-lite is entered, without the environment
variable set beforehand: ``space._tf`` is the one door, and it sets ``TF_USE_LEGACY_KERAS``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = "import tensorflow as tf; print(tf.keras.__name__.split('.')[0], tf.keras.layers.Dense.__module__.split('.')[0])"


def _fresh(code: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**environment, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


@pytest.mark.parametrize("entry", [
    "from evaluators.train import fit_candidate; from space.model import build",
    "import evaluators.compress",
    "import search.worker, search.trial; from space.convert import to_tflite; from space import _tf; _tf.tensorflow()",
])
def test_a_fresh_interpreter_gets_keras_2(entry):
    assert _fresh(f"{entry}; {CHECK}")[-2:] == ["tf_keras", "tf_keras"]
