"""The confirmed front: ``search confirm``'s runs read back as means and spreads over seeds.

:func:`confirmed` groups a study's confirming runs (``ResultStore.confirmations``) by subject
(``trial:17``, ``preset:unet``): per subject the epochs with the most seeds, and over those seeds
the mean and standard deviation of test Dice, validation Dice, latency and size, each seed's
figures, and the best seed (the highest *validation* Dice: the test images choose nothing).

:func:`confirmed_front` is the front of the confirmed trials over their means, computed by
:func:`studies.front.front` (one definition of dominance; a difference within a standard
deviation over seeds is a tie). Its Dice is the mean *test* Dice when every run has one (the
search's validation images already chose these trials), else the mean validation Dice
(``Confirmed.dice_split`` says which). The ``unet`` preset is the reference, kept out of the
front. ``export --pick`` chooses among the same points.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from space import presets
from studies.front import TrialPoint, front, limit_constraints, study_limits, study_points
from studies.metrics import with_spread

REFERENCE = f"preset:{presets.REFERENCE}"  # its subject name
SUMMED = ("dice", "test_dice", "latency_ms", "size_kb")  # the figures averaged over seeds


@dataclasses.dataclass(frozen=True)
class Confirmed:
    """One subject's confirming runs at one number of epochs."""

    subject: str
    epochs: int
    runs: tuple[dict, ...]  # each seed's figures, by seed
    search: TrialPoint | None  # the trial (or the preset's trial) as the search measured it, if it did
    limits: dict = dataclasses.field(default_factory=dict)

    @property
    def number(self) -> int | None:
        kind, _, value = self.subject.partition(":")
        return int(value) if kind == "trial" else None

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run["seed"] for run in self.runs)

    @property
    def summary(self) -> str:
        return str(self.runs[0].get("summary", ""))

    @property
    def dice_split(self) -> str:
        return "test" if all(run.get("test_dice") is not None for run in self.runs) else "validation"

    def mean(self, name: str) -> float | None:
        values = [run[name] for run in self.runs if run.get(name) is not None]
        return float(np.mean(values)) if values else None

    def std(self, name: str) -> float | None:
        values = [run[name] for run in self.runs if run.get(name) is not None]
        return float(np.std(values, ddof=1)) if len(values) > 1 else (0.0 if values else None)

    @property
    def dice_key(self) -> str:
        return "test_dice" if self.dice_split == "test" else "dice"

    @property
    def best_seed(self) -> int:
        """The seed with the highest validation Dice (its model is the one to export)."""
        return max(self.runs, key=lambda run: (run["dice"], -run["seed"]))["seed"]

    @property
    def point(self) -> TrialPoint:
        """The subject as the front sees it: the means, with one standard deviation as its spread."""
        values = {"dice": self.mean(self.dice_key), "latency_ms": self.mean("latency_ms"), "size_kb": self.mean("size_kb")}
        spread = self.std(self.dice_key) or 0.0
        attrs = {"summary": self.summary, "quant": self.runs[0].get("quant") or self.runs[0]["spec"]["quant"]["mode"],
                 "spec": self.runs[0].get("spec"), "dice_ci95": [values["dice"] - spread, values["dice"] + spread],
                 "latency_cv": (self.std("latency_ms") or 0.0) / values["latency_ms"] / np.sqrt(len(self.runs))}
        feasible = all(v <= 0 for v in limit_constraints(self.limits, values).values())
        return TrialPoint(number=self.number if self.number is not None else -1, trial_id=-1, state="COMPLETE",
                          values=values, objectives=self.search.objectives if self.search else tuple(values),
                          attrs=attrs, feasible=feasible, preset=None if self.number is not None else self.subject)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: subject, epochs, seeds, the means and spreads, the best seed, the search-time values."""
        return {
            "subject": self.subject, "trial": self.number, "summary": self.summary, "epochs": self.epochs,
            "seeds": list(self.seeds), "best_seed": self.best_seed, "dice_split": self.dice_split,
            "mean": {name: self.mean(name) for name in SUMMED}, "std": {name: self.std(name) for name in SUMMED},
            "search": dict(self.search.values) if self.search else None,
            "runs": [{k: run.get(k) for k in ("seed", "dice", "test_dice", "latency_ms", "size_kb")} for run in self.runs],
        }


def confirmed(study, rows: list[dict]) -> list[Confirmed]:
    """The study's confirmed subjects from its confirming runs (``ResultStore.confirmations``),
    the reference first, then by trial number; per subject the epochs with the most seeds
    (ties: the most epochs)."""
    points = study_points(study)
    by_number = {p.number: p for p in points}
    by_preset = {f"preset:{p.preset}": p for p in reversed(points) if p.preset and p.complete}  # the first run of each
    limits = study_limits(study)
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["subject"], row["epochs"]), []).append({**row["figures"], "seed": row["seed"]})
    chosen: dict[str, tuple[int, list[dict]]] = {}
    for (subject, epochs), runs in groups.items():
        if subject not in chosen or (len(runs), epochs) > (len(chosen[subject][1]), chosen[subject][0]):
            chosen[subject] = (epochs, runs)
    items = []
    for subject, (epochs, runs) in chosen.items():
        item = Confirmed(subject, epochs, tuple(sorted(runs, key=lambda r: r["seed"])), None, limits)
        items.append(dataclasses.replace(item, search=by_number.get(item.number) or by_preset.get(subject)))
    return sorted(items, key=lambda c: (c.subject != REFERENCE, c.number if c.number is not None else -1, c.subject))


def load_confirmed(study) -> list[Confirmed]:
    """:func:`confirmed` of ``study``, read from its own database."""
    from studies.storage import storage_url
    from studies.store import ResultStore

    with ResultStore(storage_url(study._storage), create=False) as store:
        return confirmed(study, store.confirmations(study.study_name))


def reference(items: list[Confirmed]) -> Confirmed | None:
    return next((c for c in items if c.subject == REFERENCE), None)


def confirmed_front(items: list[Confirmed], metrics=None) -> list[Confirmed]:
    """The confirmed trials (not the reference) on the front of their means."""
    trials = {c.number: c for c in items if c.number is not None}
    return [trials[p.number] for p in front([c.point for c in trials.values()], metrics)]


def spearman(xs, ys) -> float | None:
    """Spearman's rank correlation of two equal-length sequences (average ranks for ties)."""
    if len(xs) < 2:
        return None
    rx, ry = _ranks(np.asarray(xs, float)), _ranks(np.asarray(ys, float))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = values.argsort()
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        ranks[values == value] = ranks[values == value].mean()
    return ranks


# -- rendering ------------------------------------------------------------------------------------
def _pm(item: Confirmed, name: str) -> str:
    return with_spread(name, item.mean(name), item.std(name))


def format_confirmed(items: list[Confirmed], metrics=None) -> str:
    """The ``search status`` table: each confirmed subject's means ± standard deviations over seeds,
    the search-time Dice beside them, front members starred, the unet reference last."""
    if not items:
        return ""
    members = {c.subject for c in confirmed_front(items, metrics)}
    ref = reference(items)
    epochs = sorted({c.epochs for c in items})
    head = (f"confirmed: {len(items)} subject(s), {'/'.join(map(str, epochs))} epochs, up to "
            f"{max(len(c.runs) for c in items)} seed(s); * on the confirmed front (mean {items[0].dice_split} Dice)")
    width = max(len("summary"), *(len(c.summary) for c in items))
    lines = [head, f"{'':1}{'trial':>6}  {'summary':<{width}}  {'test dice':>15} {'val dice':>15} "
                   f"{'search dice':>11} {'latency ms':>15} {'size KB':>9} seeds"]
    for item in [c for c in items if c is not ref] + ([ref] if ref else []):
        name = "unet" if item is ref else str(item.number)
        search = f"{item.search.values['dice']:.3f}" if item.search and "dice" in item.search.values else "-"
        size = item.mean("size_kb")
        lines.append(f"{'*' if item.subject in members else ' '}{name:>6}  {item.summary:<{width}}  "
                     f"{_pm(item, 'test_dice'):>15} {_pm(item, 'dice'):>15} {search:>11} "
                     f"{_pm(item, 'latency_ms'):>15} {size:>9.1f} {len(item.runs)}")
    if ref is None:
        lines.append("  (no unet reference yet: 'search confirm' runs it)")
    return "\n".join(lines)
