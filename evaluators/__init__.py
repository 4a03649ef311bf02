"""HOW a candidate scores: datasets, training, Dice/IoU of the TFLite model, latency, size."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
