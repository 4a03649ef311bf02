"""WHERE results live: Optuna's RDB storage plus the project's own tables, in one database.

Conventions shared with :mod:`search` (the writer) and the readers here (status, figures,
dashboard, export). Objective values are named with ``study.set_metric_names`` from
``METRICS``; every trial carries these user attributes (JSON):

- ``spec``: ``CandidateSpec.to_dict()``; ``summary``: ``spec.summary``; ``kinds``: sorted block
  kinds; ``quant``: quant mode; ``preset``: preset name (enqueued presets only)
- ``dice`` (TFLite model, after PTQ), ``float_dice`` (Keras model), ``iou``
- ``latency_ms`` (median), ``latency_p10_ms``, ``latency_p90_ms``, ``latency_cv``, ``device``
- ``size_bytes``, ``params``, ``macs``, ``peak_memory_bytes``
- ``dice_history``: validation Dice per epoch
- ``infeasible``: why a constraint rejected it (COMPLETE with dice 0 and a positive constraint)
- ``stopped_early``: why it was stopped (state PRUNED; its ``latency_ms`` and ``size_bytes``, if any, are the
  untrained model's); ``error``: why it failed (state FAIL)
- ``seconds``: ``{"train", "convert", "latency", "total"}``

The ``.tflite`` bytes, every latency measurement and preview images live in the project's own
tables (:mod:`studies.records`), keyed by Optuna's ``trial_id``.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

METRICS = {"dice": "maximize", "latency_ms": "minimize", "size_kb": "minimize"}
