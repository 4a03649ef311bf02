"""The one vocabulary of metrics: names, directions, short names, units, labels, formats, ideal values,
the study's limits on them, how a trial's user attributes give them, and trial counts by state.

``dice`` is maximized, ``latency_ms`` and ``size_kb`` minimized; ``latency`` and ``size`` are accepted
as short names everywhere (objectives, pick rules, references). A trial stores its size in bytes
(``size_bytes``); it is shown and optimized in KB (:func:`size_kb`, 1 KB = 1024 bytes).

A study's *limits* (``min_dice``, ``max_latency_ms``, ``max_size_kb``, from ``search start``'s flags) are
named :func:`limit_name` of their metric; a trial's *constraint values* against them are in
:mod:`studies.front`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

METRICS = {"dice": "maximize", "latency_ms": "minimize", "size_kb": "minimize"}
ALIASES = {"dice": "dice", "latency": "latency_ms", "latency_ms": "latency_ms", "size": "size_kb", "size_kb": "size_kb"}
SHORT = {"dice": "dice", "latency_ms": "latency", "size_kb": "size"}
"""The name text uses for a metric (``latency 23.40 ms``, pick rules)."""
UNITS = {"dice": "", "latency_ms": "ms", "size_kb": "KB"}
FORMATS = {"dice": ".3f", "latency_ms": ".2f", "size_kb": ".1f"}
AXES = {"dice": "Dice (TFLite model)", "latency_ms": "latency p50 (ms)", "size_kb": "size (KB)"}
"""Axis titles of the figures."""
IDEAL = {"dice": 1.0, "latency_ms": 0.0, "size_kb": 0.0}
"""The best value each metric could take; the hypervolume is normalised between it and the reference."""
CHOICES = ", ".join(SHORT[m] + (f" ({UNITS[m]})" if UNITS[m] else "") for m in METRICS)
"""``dice, latency (ms), size (KB)``: what error messages offer."""


def metric_name(name: str) -> str:
    """The canonical metric for ``name`` (``latency`` -> ``latency_ms``); ``ValueError`` listing the choices."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in ALIASES:
        raise ValueError(f"unknown metric {name!r}; choose one of {CHOICES}")
    return ALIASES[key]


def metric_names(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical, without repeats, in order; ``ValueError`` when empty or unknown."""
    canonical = tuple(dict.fromkeys(metric_name(n) for n in names))
    if not canonical:
        raise ValueError(f"no metric given; choose from {', '.join(SHORT.values())}")
    return canonical


def sign(metric: str) -> float:
    """+1 for minimized metrics, -1 for maximized ones: ``sign * value`` is a loss."""
    return -1.0 if METRICS[metric] == "maximize" else 1.0


def format_value(metric: str, value: float | None) -> str:
    """``dice 0.812``, ``latency 23.40 ms``, ``size 310.2 KB``."""
    label = SHORT.get(metric, metric)
    if value is None:
        return f"{label} ?"
    unit = f" {UNITS[metric]}" if UNITS.get(metric) else ""
    return f"{label} {value:{FORMATS.get(metric, 'g')}}{unit}"


def limit_name(metric: str) -> str:
    """``min_dice``, ``max_latency_ms``, ``max_size_kb``: the study's limit on ``metric``."""
    return ("min_" if METRICS[metric] == "maximize" else "max_") + metric


LIMITS = {limit_name(m): m for m in METRICS}
"""Limit name -> the metric it bounds."""


def finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def size_kb(size_bytes: Any) -> float | None:
    """KB (1024 bytes) of a size in bytes; ``None`` when it is not a number."""
    size = finite(size_bytes)
    return size / 1024 if size is not None else None


def trial_metrics(user_attrs: dict) -> dict[str, float]:
    """The metrics a trial's user attributes give (``dice``, ``latency_ms``, ``size_bytes`` in KB); only known ones."""
    values = {"dice": finite(user_attrs.get("dice")), "latency_ms": finite(user_attrs.get("latency_ms")),
              "size_kb": size_kb(user_attrs.get("size_bytes"))}
    return {name: value for name, value in values.items() if value is not None}


WITHDRAWN = "withdrawn"  # the system attribute of a WAITING trial a lower budget took back (search.loop)


def withdrawn(trial) -> bool:
    """Whether ``trial`` is a WAITING trial a lower budget took back: failed, but never run."""
    return trial.state.name == "FAIL" and WITHDRAWN in getattr(trial, "system_attrs", {})


def state_counts(trials) -> dict[str, int]:
    """How many of ``trials`` are in each state, by ``TrialState`` name, in order of first appearance;
    trials a lower budget withdrew count as ``WITHDRAWN``, not as failed."""
    counts: dict[str, int] = {}
    for trial in trials:
        state = "WITHDRAWN" if withdrawn(trial) else trial.state.name
        counts[state] = counts.get(state, 0) + 1
    return counts


def half_width(interval) -> float | None:
    """Half a ``[low, high]`` interval such as ``dice_ci95``; ``None`` unless it is two finite numbers."""
    if not (isinstance(interval, (list, tuple)) and len(interval) == 2 and all(finite(v) is not None for v in interval)):
        return None
    return abs(interval[1] - interval[0]) / 2


def with_spread(metric: str, value: float | None, spread: float | None = None) -> str:
    """THE text of a value with its uncertainty, in the metric's format (``test_dice`` as ``dice``):
    ``0.812 ± 0.021``, ``3.59 ± 0.12``; the bare value without a spread, ``–`` without a value.
    No unit: callers add it."""
    number = finite(value)
    if number is None:
        return "–"
    spec = FORMATS.get(ALIASES.get(metric.removeprefix("test_"), metric), ".4g")
    return f"{number:{spec}}{_spread(spread, spec)}"


def plus_minus(interval) -> str:
    """`` ± 0.031``: half a 95% Dice interval such as ``dice_ci95``, as :func:`with_spread` writes it
    (nothing for trials that recorded none)."""
    return _spread(half_width(interval), FORMATS["dice"])


def _spread(spread: float | None, spec: str) -> str:
    return f" ± {spread:{spec}}" if finite(spread) and spread > 0 else ""
