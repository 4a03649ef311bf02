"""Where a study stands: trials by state, the front, hypervolume, time spent and the tool's overhead.

:func:`study_status` computes a :class:`StudyStatus`; :func:`format_status` and
:func:`format_studies` render text for ``search status`` and ``search studies``
(``StudyStatus.to_dict`` is the ``--json`` form). A study with confirmed trials (``search confirm``)
gets a ``confirmed`` table too (:func:`studies.confirmed.format_confirmed`).

Overhead is what a trial spends outside training, conversion and latency measurement (from each
trial's ``seconds`` attribute, ``total - train - convert - latency``) plus what its worker spent
before it, since its previous trial ended (``seconds_before``: storage, memory release, start-up).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from studies import pareto
from studies.confirmed import format_confirmed, load_confirmed
from studies.front import (
    TrialPoint, constant_mask, front, no_better_than, objective_names, study_limits, study_points, uncertainty,
)
from studies.metrics import FORMATS, METRICS, format_value, state_counts, with_spread
from studies.names import printable
from studies.storage import StudyInfo, storage_url

STATE_ORDER = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
STAGES = ("train", "convert", "latency")


@dataclasses.dataclass
class StudyStatus:
    """Everything ``search status`` shows, computed once from a study."""

    study: str
    storage: str
    objectives: tuple[str, ...]
    states: dict[str, int]
    infeasible: int
    front: list[TrialPoint]
    hypervolume: float
    reference: dict[str, float]
    started: datetime.datetime | None
    finished: datetime.datetime | None
    wall_seconds: float
    trial_seconds: float
    stage_seconds: dict[str, float]
    overhead_seconds: float
    between_seconds: float = 0.0
    devices: dict = dataclasses.field(default_factory=dict)  # name -> what the worker recorded of it
    drift: dict = dataclasses.field(default_factory=dict)  # device -> drift events (search.drift)
    retimed: dict = dataclasses.field(default_factory=dict)  # device -> {trial number: median ms timed again}
    confirmed: list = dataclasses.field(default_factory=list)  # studies.confirmed.Confirmed, 'search confirm'
    constant_mask_dice: float | None = None  # what a model must beat (studies.front.constant_mask)
    no_better_than_constant: list = dataclasses.field(default_factory=list)  # front members that do not beat it
    hypervolume_above_constant: float | None = None  # the hypervolume with its Dice as the reference's

    @property
    def n_trials(self) -> int:
        return sum(self.states.values())

    @property
    def overhead_fraction(self) -> float | None:
        """Overhead in and between trials as a share of the measured time (``None`` when no trial
        reported ``seconds``)."""
        overhead = self.overhead_seconds + self.between_seconds
        measured = overhead + sum(self.stage_seconds.values())
        return overhead / measured if measured > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "storage": self.storage,
            "objectives": list(self.objectives),
            "trials": self.n_trials,
            "states": dict(self.states),
            "infeasible": self.infeasible,
            "front": [_front_row(p) for p in self.front],
            "hypervolume": self.hypervolume,
            "reference": dict(self.reference),
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat() if self.finished else None,
            "wall_seconds": self.wall_seconds,
            "trial_seconds": self.trial_seconds,
            "stage_seconds": dict(self.stage_seconds),
            "overhead_seconds": self.overhead_seconds,
            "between_seconds": self.between_seconds,
            "overhead_fraction": self.overhead_fraction,
            "devices": dict(self.devices),
            "drift": dict(self.drift),
            "retimed": dict(self.retimed),
            "confirmed": [c.to_dict() for c in self.confirmed],
            "constant_mask_dice": self.constant_mask_dice,
            "no_better_than_constant_mask": list(self.no_better_than_constant),
            "hypervolume_above_constant_mask": self.hypervolume_above_constant,
        }


def _front_row(point: TrialPoint) -> dict[str, Any]:
    return {
        "number": point.number, "trial_id": point.trial_id, "summary": point.summary, "quant": point.quant,
        "preset": point.preset, **{m: point.values.get(m) for m in METRICS},
        "dice_ci95": point.attrs.get("dice_ci95"), "test_dice": point.attrs.get("test_dice"),
        "latency_cv": point.attrs.get("latency_cv"), "latency_unsteady": bool(point.attrs.get("latency_unsteady")),
    }


def study_status(study, now: datetime.datetime | None = None) -> StudyStatus:
    """The :class:`StudyStatus` of an Optuna study (``now`` closes the wall time of running trials)."""
    trials = study.get_trials(deepcopy=False)
    points = study_points(study)
    metrics = objective_names(study) or tuple(METRICS)
    metrics = tuple(m for m in metrics if m in METRICS)
    members = sorted(front(points, metrics), key=lambda p: (-p.values["dice"], p.number)) if metrics else []
    reference = pareto.default_reference(points, metrics, study_limits(study)) if metrics else {}
    states = state_counts(trials)
    started = min((t.datetime_start for t in trials if t.datetime_start), default=None)
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    running = any(t.state.name == "RUNNING" for t in trials)
    finished = max(ends, default=None)
    until = (now or datetime.datetime.now()) if running else finished
    stage, overhead, total = _seconds(trials)
    baseline = constant_mask(study)
    return StudyStatus(
        study=study.study_name,
        storage=storage_url(study._storage),
        objectives=metrics,
        states={s: states[s] for s in (*STATE_ORDER, *sorted(states)) if s in states},
        infeasible=sum(1 for p in points if p.complete and not p.feasible),
        front=members,
        hypervolume=pareto.hypervolume(points, metrics, reference) if metrics else 0.0,
        reference=reference,
        started=started,
        finished=finished,
        wall_seconds=(until - started).total_seconds() if started and until else 0.0,
        trial_seconds=total,
        stage_seconds=stage,
        overhead_seconds=overhead,
        between_seconds=sum(float(t.user_attrs.get("seconds_before") or 0.0) for t in trials),
        devices=study_devices(study),
        drift=_prefixed(study, "drift:"),
        retimed=_prefixed(study, "retimed:"),
        confirmed=load_confirmed(study),
        constant_mask_dice=baseline.values["dice"] if baseline else None,
        no_better_than_constant=[p.number for p in members if baseline and "dice" in p.values and no_better_than(p, baseline)],
        hypervolume_above_constant=pareto.hypervolume_above(points, baseline, metrics, reference) if baseline and metrics else None,
    )


def _seconds(trials) -> tuple[dict[str, float], float, float]:
    """Per-stage sums and overhead over trials with a ``seconds`` attr; total time of all finished trials."""
    stage = dict.fromkeys(STAGES, 0.0)
    overhead = total = 0.0
    for trial in trials:
        seconds = trial.user_attrs.get("seconds")
        if isinstance(seconds, dict) and isinstance(seconds.get("total"), (int, float)):
            spent = {k: float(seconds.get(k) or 0.0) for k in STAGES}
            for key, value in spent.items():
                stage[key] += value
            overhead += max(0.0, float(seconds["total"]) - sum(spent.values()))
            total += float(seconds["total"])
        elif trial.datetime_start and trial.datetime_complete:
            total += (trial.datetime_complete - trial.datetime_start).total_seconds()
    return stage, overhead, total


# -- rendering -----------------------------------------------------------------------------------
def duration(seconds: float) -> str:
    """``1h 02m``, ``12m 34s``, ``8.5s``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _states_line(states: dict[str, int], infeasible: int) -> str:
    parts = []
    for state, count in states.items():
        text = f"{state.lower()} {count}"
        if state == "COMPLETE" and infeasible:
            text += f" ({infeasible} infeasible)"
        parts.append(text)
    return ", ".join(parts) if parts else "none yet"


DEVICE_PREFIX = "device:"  # study user attributes search.worker writes, one per device that timed trials


def study_devices(study) -> dict[str, dict]:
    return {name: value for name, value in _prefixed(study, DEVICE_PREFIX).items() if isinstance(value, dict)}


def _prefixed(study, prefix: str) -> dict:
    return {key.removeprefix(prefix): value for key, value in study.user_attrs.items() if key.startswith(prefix)}


def drift_lines(drift: dict, retimed: dict) -> list[str]:
    """One line per device whose reference model drifted (see :mod:`search.drift`)."""
    lines = []
    for device, events in sorted(drift.items()):
        worst = max(events, key=lambda e: abs(e["reference_ms"] / e["baseline_ms"] - 1))
        change = worst["reference_ms"] / worst["baseline_ms"] - 1
        again = retimed.get(device, {})
        lines.append(f"drift on {device}: {len(events)} time(s) the reference model moved beyond 5% (at most {change:+.0%}, "
                     f"after trial {worst['after_trial']}); {len(again)} trial(s) timed again (measurements table)")
    return lines


def device_line(name: str, info: dict) -> str:
    """``measured on local: AMD EPYC 7B13, 2 cores, x86_64; int8-relevant features: avx2`` (and why
    a local front is not a Pi's)."""
    features = ", ".join(info.get("cpu_features") or []) or "none of avx512_vnni, avx_vnni, asimddp, i8mm"
    text = (f"measured on {name}: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, {info.get('machine', '?')}; "
            f"int8-relevant features: {features}")
    if name.startswith("local"):
        text += " (this machine: its ranking of int8 and float models need not be a Pi's)"
    return text


def format_front(members: list[TrialPoint]) -> str:
    """The front as a table: trial, summary, quant, dice, latency ms, size KB."""
    width = max([len("summary")] + [len(_summary(p)) for p in members])
    lines = [f"{'trial':>6}  {'summary':<{width}}  {'quant':<9} {'dice':>13} {'latency ms':>11} {'size KB':>9}"]
    for p in members:
        dice = with_spread("dice", p.values.get("dice"), uncertainty(p, "dice"))
        latency, size = (_fmt(p.values.get(m), FORMATS[m]) for m in ("latency_ms", "size_kb"))
        latency = ("~" if p.attrs.get("latency_unsteady") else "") + latency
        lines.append(f"{p.number:>6}  {_summary(p):<{width}}  {p.quant:<9} {dice:>13} {latency:>11} {size:>9}")
    unsteady = sum(bool(p.attrs.get("latency_unsteady")) for p in members)
    if unsteady:
        lines.append(f"~ {unsteady} latency(ies) stayed above the CV target after every retry: ties within their spread "
                     "(time on a quiet device: see README, 'Latency on this machine is not a Pi's')")
    return "\n".join(lines)


def _summary(point: TrialPoint) -> str:
    return point.summary + (f" [preset {point.preset}]" if point.preset else "")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_status(status: StudyStatus) -> str:
    """``search status`` as text."""
    reference = ", ".join(format_value(m, v) for m, v in status.reference.items())
    objectives = ", ".join(f"{m} ({METRICS[m][:3]})" for m in status.objectives)
    lines = [
        f"study {status.study} in {status.storage}",
        f"objectives: {objectives}",
        f"trials: {status.n_trials} ({_states_line(status.states, status.infeasible)})",
    ]
    if status.front:
        above = status.hypervolume_above_constant
        lines.append(f"Pareto front: {len(status.front)} trial(s), hypervolume {status.hypervolume:.4f} (reference {reference})"
                     + (f", {above:.4f} above the constant mask" if above is not None else ""))
        lines.append(format_front(status.front))
        lines += _constant_mask_line(status)
    else:
        lines.append("Pareto front: empty (no complete feasible trial yet)")
    lines += [device_line(name, info) for name, info in sorted(status.devices.items())]
    lines += drift_lines(status.drift, status.retimed)
    lines.append(_time_line(status))
    if status.confirmed:
        lines.append(format_confirmed(status.confirmed, status.objectives))
    return printable("\n".join(lines))


def _constant_mask_line(status: StudyStatus) -> list[str]:
    if not status.no_better_than_constant:
        return []
    numbers = ", ".join(f"#{n}" for n in status.no_better_than_constant)
    highest = max(p.values["dice"] for p in status.front if p.number in status.no_better_than_constant)
    floor = f"{highest + 0.001:.3f}"
    return [f"! no better than a constant mask (Dice {status.constant_mask_dice:.3f} on these validation images, within "
            f"the paired 95% interval): {numbers}; export --pick 'dice>={floor},min:latency' passes over what "
            f"learned nothing, --min-dice {floor} leaves it out of a new study"]


def _time_line(status: StudyStatus) -> str:
    text = f"time: {duration(status.wall_seconds)} wall, {duration(status.trial_seconds)} in trials"
    measured = sum(status.stage_seconds.values()) + status.overhead_seconds
    if measured > 0:
        shares = ", ".join(f"{k} {100 * v / measured:.0f}%" for k, v in status.stage_seconds.items())
        text += (f" ({shares}); nas-lite overhead {duration(status.overhead_seconds)} in trials"
                 f" + {duration(status.between_seconds)} between = {100 * status.overhead_fraction:.1f}%")
    return text


def format_studies(infos: list[StudyInfo], url: str) -> str:
    """``search studies`` as text: one line per study with its trial counts."""
    if not infos:
        return f"no studies in {url}; run 'search start' to make one"
    width = max(len("study"), *(len(printable(i.name)) for i in infos))
    lines = [f"{'study':<{width}}  {'trials':>6} {'complete':>8} {'pruned':>6} {'failed':>6} {'running':>7}  last activity        objectives"]
    for info in infos:
        s = info.states
        last = info.last_activity.strftime("%Y-%m-%d %H:%M:%S") if info.last_activity else "-"
        objectives = ",".join(info.metric_names or info.directions)
        lines.append(
            f"{printable(info.name):<{width}}  {info.n_trials:>6} {s.get('COMPLETE', 0):>8} {s.get('PRUNED', 0):>6} "
            f"{s.get('FAIL', 0):>6} {s.get('RUNNING', 0):>7}  {last:<19}  {objectives}"
        )
    return "\n".join(lines)
