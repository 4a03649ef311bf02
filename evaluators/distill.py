"""Distillation: a trained teacher's soft masks as a second target for the students.

The teacher's probabilities on the training images are computed once (:func:`teacher_targets`)
and ride along with the masks as a second channel, so the random flips of
:func:`evaluators.train.training_dataset` turn them with the images and a student's training step
costs no teacher forward pass. :func:`distillation_loss` mixes the usual BCE + Dice on the mask
with a BCE between the student's and the teacher's probabilities softened by a temperature (on
the logits, as Hinton et al. do for a softmax; scaled by T^2 so the weight means the same at any T).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from space import _tf

DEFAULT_WEIGHT = 0.5
DEFAULT_TEMPERATURE = 2.0
EPSILON = 1e-6


@dataclasses.dataclass(frozen=True, eq=False)
class Teacher:
    """What a student learns from besides the masks: the teacher's ``targets`` on the training
    images (in their order), the loss ``weight`` of the soft term and its ``temperature``."""

    targets: np.ndarray
    weight: float = DEFAULT_WEIGHT
    temperature: float = DEFAULT_TEMPERATURE

    def loss(self):
        return distillation_loss(self.weight, self.temperature)


def teacher_targets(predict, images, batch_size: int = 16) -> np.ndarray:
    """The teacher's probabilities (N, H, W, 1) float32 on ``images``: ``predict`` is a Keras model
    or any function from an image batch to probabilities (a TFLite runner, say)."""
    from evaluators.accuracy import predict_keras

    if hasattr(predict, "predict_on_batch"):
        return predict_keras(predict, images, batch_size)
    return np.concatenate([np.asarray(predict(images[i:i + batch_size]), np.float32)
                           for i in range(0, len(images), batch_size)])


def with_targets(masks: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Masks (N, H, W, 1) with the teacher's targets as a second channel: what training reads."""
    if targets.shape != masks.shape:
        raise ValueError(f"teacher targets {targets.shape} must have the shape of the masks {masks.shape}")
    return np.concatenate([masks, targets], axis=-1).astype(np.float32)


def soften(probabilities, temperature: float):
    """sigmoid(logit(p) / T), on TensorFlow tensors."""
    tf = _tf.tensorflow()
    p = tf.clip_by_value(probabilities, EPSILON, 1 - EPSILON)
    return tf.sigmoid(tf.math.log(p / (1 - p)) / temperature)


def distillation_loss(weight: float = DEFAULT_WEIGHT, temperature: float = DEFAULT_TEMPERATURE):
    """A Keras loss on ``y_true = [mask, teacher]``: (1 - w) * BCE+Dice(mask) + w * T^2 * BCE(soft student, soft teacher)."""
    if not 0 <= weight <= 1:
        raise ValueError(f"distill weight: must be between 0 and 1, got {weight}")
    if not temperature > 0:
        raise ValueError(f"distill temperature: must be positive, got {temperature}")
    from evaluators.train import bce_dice_loss

    def loss(y_true, y_pred):
        tf = _tf.tensorflow()
        keras = _tf.keras()
        y_true = tf.cast(y_true, y_pred.dtype)
        mask, teacher = y_true[..., :1], y_true[..., 1:]
        soft = keras.losses.binary_crossentropy(soften(teacher, temperature), soften(y_pred, temperature))
        return (1 - weight) * bce_dice_loss(mask, y_pred) + weight * temperature ** 2 * tf.reduce_mean(soft, axis=[1, 2])

    return loss
