"""TensorFlow with tf-keras (Keras 2), imported on first use: the one door to TensorFlow.

tensorflow-model-optimization works only with tf-keras, so ``TF_USE_LEGACY_KERAS=1`` must be set
before TensorFlow is first imported. Every TensorFlow, tf-keras and tfmot import of nas-lite goes
through this module (``tensorflow()``, ``keras()``, or importing it first), which sets it when
imported; worker subprocesses and ``python -m search`` reach TensorFlow the same way.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tensorflow():
    import tensorflow as tf

    return tf


def keras():
    """``tf.keras``, checked to be tf-keras 2.x."""
    import tf_keras

    tf = tensorflow()
    if not tf.keras.__name__.startswith("tf_keras"):
        raise RuntimeError(
            "TensorFlow was imported with Keras 3 before nas-lite could set TF_USE_LEGACY_KERAS=1; "
            "set TF_USE_LEGACY_KERAS=1 in the environment"
        )
    return tf_keras
