"""Distillation on tiny seeded data: targets flip with the images, the loss mixes the two terms,
and a student learns from a teacher."""

import numpy as np
import pytest

from evaluators.accuracy import dice_iou
from evaluators.distill import SOFT_TERMS, Teacher, bce_loss, distillation_loss, soften, teacher_targets, with_targets
from evaluators.train import bce_dice_loss, train, training_dataset
from space.model import build
from space.spec import uniform


def test_teacher_targets_flip_with_the_images():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(12, 8, 8, 3)).astype(np.float32)
    masks = (rng.uniform(size=(12, 8, 8, 1)) > 0.5).astype(np.float32)
    targets = images[..., :1] * 0.5  # a "teacher" whose target is a function of the image
    for batch_images, batch_targets in training_dataset(images, with_targets(masks, targets), 4, seed=1, epochs=2).as_numpy_iterator():
        assert batch_targets.shape[-1] == 2
        np.testing.assert_allclose(batch_targets[..., 1:], batch_images[..., :1] * 0.5, atol=1e-6)


def test_the_loss_is_the_plain_one_at_weight_0_and_rises_with_disagreement():
    import tensorflow as tf

    mask = tf.constant(np.ones((2, 4, 4, 1), np.float32))
    pred = tf.constant(np.full((2, 4, 4, 1), 0.8, np.float32))
    agreeing = tf.concat([mask, pred], axis=-1)
    disagreeing = tf.concat([mask, 1 - pred], axis=-1)
    np.testing.assert_allclose(distillation_loss(0.0)(agreeing, pred), bce_dice_loss(mask, pred), rtol=1e-6)
    assert float(tf.reduce_mean(distillation_loss(0.5)(disagreeing, pred))) > float(tf.reduce_mean(distillation_loss(0.5)(agreeing, pred)))
    np.testing.assert_allclose(soften(tf.constant([0.5, 0.9]), 1.0), [0.5, 0.9], atol=1e-5)
    assert float(soften(tf.constant(0.9), 3.0)) < 0.9
    with pytest.raises(ValueError, match="between 0 and 1"):
        distillation_loss(1.5)
    with pytest.raises(ValueError, match="unknown 'kl'; choose from bce, bce-dice"):
        distillation_loss(0.5, 1.0, "kl")
    with pytest.raises(ValueError, match="positive"):
        distillation_loss(0.5, 0)


def test_each_soft_term_compares_the_softened_predictions_and_the_option_names_them_all():
    """bce-dice weighs a missed sparse foreground as the hard term does; bce hardly sees it."""
    import tensorflow as tf

    from search.options import DISTILL_TERMS

    assert DISTILL_TERMS == tuple(SOFT_TERMS)
    mask = np.zeros((1, 8, 8, 1), np.float32)
    teacher = mask.copy()
    teacher[0, :2, :2] = 0.9  # the teacher sees a small object
    pred = tf.constant(np.full((1, 8, 8, 1), 0.05, np.float32))  # the student sees none
    y_true = tf.constant(np.concatenate([mask, teacher], axis=-1))
    for term, expected in [("bce", bce_loss), ("bce-dice", bce_dice_loss)]:
        soft = expected(soften(tf.constant(teacher), 2.0), soften(pred, 2.0))
        np.testing.assert_allclose(distillation_loss(1.0, 2.0, term)(y_true, pred), 4.0 * soft, rtol=1e-5)
    bce_only, with_dice = (float(distillation_loss(1.0, 1.0, term)(y_true, pred)[0]) for term in ("bce", "bce-dice"))
    assert with_dice > bce_only + 0.5, (bce_only, with_dice)


def test_a_student_learns_the_teachers_answer(data):
    """With weight 1 a wider student sees only the teacher: it comes to segment as the teacher does."""
    teacher_model = build(uniform("standard", depth=3, base_width=4, input_size=32), seed=0)
    train(teacher_model, data, epochs=3, batch_size=8, seed=0)
    targets = teacher_targets(teacher_model, data.train_images)
    answer = teacher_targets(teacher_model, data.val_images) > 0.5
    student = build(uniform("standard", depth=3, base_width=8, input_size=32), seed=1)
    before, _ = dice_iou(teacher_targets(student, data.val_images), answer)
    train(student, data, epochs=3, batch_size=8, seed=1, teacher=Teacher(targets, weight=1.0, temperature=1.0))
    after, _ = dice_iou(teacher_targets(student, data.val_images), answer)  # the masks never entered its loss
    assert after > max(0.6, before + 0.3), (before, after)
