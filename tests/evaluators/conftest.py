"""Tiny seeded data for the training and accuracy tests: bright rectangles on a noisy background."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def rectangles(count: int = 64, size: int = 32, channels: int = 3, seed: int = 0, val: int = 16) -> SimpleNamespace:
    """``count`` images with one bright rectangle each (the mask); the last ``val`` are validation."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.3, 0.05, (count, size, size, channels)).astype(np.float32)
    masks = np.zeros((count, size, size, 1), np.float32)
    for index in range(count):
        top, left = rng.integers(0, size - size * 3 // 8, 2)
        height, width = rng.integers(size * 3 // 16, size * 3 // 8, 2)
        masks[index, top:top + height, left:left + width] = 1
        images[index, top:top + height, left:left + width] += 0.4
    images = np.clip(images, 0, 1)
    return SimpleNamespace(
        train_images=images[:-val], train_masks=masks[:-val], val_images=images[-val:], val_masks=masks[-val:],
    )


@pytest.fixture(scope="session")
def data():
    return rectangles()
