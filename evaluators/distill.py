"""Distillation: a trained teacher's soft masks as a second target for the students.

The teacher's probabilities on the training images are computed once (:func:`teacher_targets`)
and ride along with the masks as a second channel, so the random flips of
:func:`evaluators.train.training_dataset` turn them with the images and a student's training step
costs no teacher forward pass. :func:`distillation_loss` mixes the usual BCE + Dice on the mask
with a soft term between the student's and the teacher's probabilities softened by a temperature
(on the logits, as Hinton et al. do for a softmax; scaled by T^2 so the weight means the same at
any T). The soft term is one of ``SOFT_TERMS``: ``bce``, Hinton's, or ``bce-dice``, the hard
term's own BCE + Dice with the teacher's soft mask as the target, so that the soft term keeps the
class balance the Dice gives the hard one (BCE alone rewards the background on sparse masks).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from space import _tf

DEFAULT_WEIGHT = 0.5
DEFAULT_TEMPERATURE = 2.0
DEFAULT_SOFT_TERM = "bce-dice"  # measured: bce cost dsb2018 students 0.05-0.22 Dice at 18 epochs
EPSILON = 1e-6


@dataclasses.dataclass(frozen=True, eq=False)
class Teacher:
    """What a student learns from besides the masks: the teacher's ``targets`` on the training
    images (in their order), the loss ``weight`` of the soft term and its ``temperature``."""

    targets: np.ndarray
    weight: float = DEFAULT_WEIGHT
    temperature: float = DEFAULT_TEMPERATURE
    soft_term: str = DEFAULT_SOFT_TERM

    def loss(self):
        return distillation_loss(self.weight, self.temperature, self.soft_term)


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


def bce_loss(y_true, y_pred):
    """Binary cross-entropy, per image."""
    tf = _tf.tensorflow()
    return tf.reduce_mean(_tf.keras().losses.binary_crossentropy(y_true, y_pred), axis=[1, 2])


def bce_dice_loss(y_true, y_pred):
    """The hard term's loss, :func:`evaluators.train.bce_dice_loss`."""
    from evaluators.train import bce_dice_loss

    return bce_dice_loss(y_true, y_pred)


SOFT_TERMS = {"bce": bce_loss, "bce-dice": bce_dice_loss}


def distillation_loss(weight: float = DEFAULT_WEIGHT, temperature: float = DEFAULT_TEMPERATURE,
                      soft_term: str = DEFAULT_SOFT_TERM):
    """A Keras loss on ``y_true = [mask, teacher]``: (1 - w) * BCE+Dice(mask, student) + w * T^2 * term(soft teacher, soft student)."""
    if not 0 <= weight <= 1:
        raise ValueError(f"distill weight: must be between 0 and 1, got {weight}")
    if not temperature > 0:
        raise ValueError(f"distill temperature: must be positive, got {temperature}")
    if soft_term not in SOFT_TERMS:
        raise ValueError(f"distill soft term: unknown {soft_term!r}; choose from {', '.join(SOFT_TERMS)}")
    term = SOFT_TERMS[soft_term]

    def loss(y_true, y_pred):
        tf = _tf.tensorflow()
        y_true, y_pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)  # a bfloat16 model's output too
        mask, teacher = y_true[..., :1], y_true[..., 1:]
        soft = term(soften(teacher, temperature), soften(y_pred, temperature))
        return (1 - weight) * bce_dice_loss(mask, y_pred) + weight * temperature ** 2 * soft

    return loss
