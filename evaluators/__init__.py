"""HOW a candidate scores: datasets, training, Dice/IoU of the TFLite model, latency, size.

TensorFlow (and tfmot) come through :mod:`space._tf`, which sets ``TF_USE_LEGACY_KERAS`` first;
this file stays empty of imports because the Pi agent copies it.
"""
