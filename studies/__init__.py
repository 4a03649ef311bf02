"""WHERE results live: Optuna's RDB storage plus the project's own tables, in one database.

Conventions shared with :mod:`search` (the writer) and the readers here (status, figures,
dashboard, export). Metric names, units and limits are :mod:`studies.metrics`; objective values
are named with ``study.set_metric_names`` from ``METRICS``. The study keeps its resolved
configuration in the user attribute ``config`` (its limits ``min_dice``, ``max_latency_ms``,
``max_size_kb`` among them; older versions also wrote the limits alone as ``constraints``), and
in ``constant_mask`` each validation image's Dice of the better constant mask (the baseline a model
must beat, :func:`studies.front.constant_mask`). Every trial carries these user attributes (JSON):

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

A trial's constraint values against the study's limits are Optuna's own (``trial.set_constraint``,
one per limit, by its name; <= 0 is met), where the samplers and ``study.best_trials`` read them;
older trials kept them as a list in the user attribute ``constraints``. :func:`studies.front.feasible`
reads every form.

The ``.tflite`` bytes, every latency measurement and preview images live in the project's own
tables (:mod:`studies.records`), keyed by Optuna's ``trial_id``.

Nothing in ``studies`` imports TensorFlow: rebuilding a spec goes through :mod:`space`, which sets
``TF_USE_LEGACY_KERAS`` itself.
"""

from studies.metrics import METRICS  # noqa: F401  (the objectives' names and directions, as ``studies.METRICS``)
