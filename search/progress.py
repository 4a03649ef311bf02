"""What ``search start`` shows: a live bar (trial k/N, elapsed, ETA, best Dice, front size) and
one line per finished trial; ``--quiet`` shows only the end, ``--json`` one JSON object per line.
Where stderr is not a terminal (a log file, CI) the bar's figures end each trial's line instead.
``make_reporter(mode)`` picks the class of a mode from ``REPORTERS``."""

from __future__ import annotations

import json
import os
import sys
import time

from search.loop import FINISHED, counted
from search.pipeline import duration as _clock

MIN_BAR_COLUMNS = 40  # narrower (a zero-width terminal, COLUMNS=0), tqdm cuts the bar to nothing


class Reporter:
    """What ``search start`` shows while a search runs; one subclass per output mode (``REPORTERS``).

    The contract: ``begin(study, config, data)`` once before the first trial, ``note(text)`` for a
    message at any time, ``update(trials)`` with all of the study's trials whenever some may have
    finished (each finished trial is reported once, in number order), ``end(study)`` once at the
    end. ``shows_progress``: whether a step may draw its own progress bar (loading data).
    Subclasses implement ``_start``, ``note``, ``_trial`` and ``_finish``; ``_refresh`` is optional.
    """

    shows_progress = False

    def __init__(self, out=sys.stdout, err=sys.stderr):
        self.out, self.err = out, err
        self.seen: set[int] = set()
        self.started = time.time()

    def begin(self, study, config, data) -> None:
        self.objectives = list(config.objectives)
        self.study = study.study_name
        self.budget = config.budget
        self.deadline = time.time() + config.timeout if config.timeout else None  # --timeout ends it sooner
        trials = study.get_trials(deepcopy=False)
        self.seen = {t.number for t in trials if t.state.name in FINISHED}
        self.done = self.first = _spent(trials)
        self._start(study, config, data)

    def update(self, trials) -> None:
        finished = [t for t in trials if t.state.name in FINISHED and t.number not in self.seen]
        self.done = _spent(trials)
        for trial in sorted(finished, key=lambda t: t.number):
            self.seen.add(trial.number)
            self._trial(trial)
        self._refresh(trials)

    def end(self, study) -> None:
        from studies.metrics import state_counts

        trials = study.get_trials(deepcopy=False)
        states = {state.lower(): count for state, count in state_counts(trials).items()}
        self._finish(study, states, front(trials, self.objectives, study.study_name))

    def note(self, text: str) -> None:
        raise NotImplementedError

    def _start(self, study, config, data) -> None:
        raise NotImplementedError

    def _trial(self, trial) -> None:
        raise NotImplementedError

    def _refresh(self, trials) -> None:
        pass

    def _finish(self, study, states: dict[str, int], members: list) -> None:
        raise NotImplementedError

    def _describe(self, study, config, data) -> str:
        return (f"study {study.study_name!r} in {config.storage}: budget {config.budget}, "
                f"{self.done} finished before; {data.describe()}; {config.workers} worker(s)")

    def _summary(self, study, states: dict[str, int], members: list) -> None:
        print(f"\n{study.study_name}: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items())), file=self.out)
        print(f"Pareto front ({len(members)} trials):", file=self.out)
        for trial in sorted(members, key=lambda t: -t.user_attrs.get("dice", 0)):
            print("  " + trial_line(trial, self.objectives), file=self.out)
        for line in preset_lines(study, self.objectives):
            print(line, file=self.out)
        print("Next: search dashboard | search export --pick knee -o model.tflite", file=self.out)


class BarReporter(Reporter):
    """A live bar on a terminal's stderr and one line per trial; where stderr is no terminal, or one
    narrower than ``MIN_BAR_COLUMNS``, the bar's figures (k/N, elapsed, ETA) end each trial's line instead."""

    def __init__(self, out=sys.stdout, err=sys.stderr):
        super().__init__(out, err)
        self.bar = None

    @property
    def shows_progress(self) -> bool:
        return bar_fits(self.err)

    def _start(self, study, config, data) -> None:
        self.note(self._describe(study, config, data))
        if self.shows_progress:
            from tqdm import tqdm

            self.bar = tqdm(total=config.budget, initial=min(self.done, config.budget), desc="trials",
                            unit="trial", file=self.err, dynamic_ncols=True, smoothing=0.1)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(text, file=self.out)

    def _trial(self, trial) -> None:
        self.note(trial_line(trial, self.objectives) + self._eta())

    def _refresh(self, trials) -> None:
        if self.bar is None:
            return
        self.bar.n = min(self.done, self.budget)
        best = max((t.user_attrs.get("dice", 0.0) for t in trials if _feasible(t)), default=0.0)
        stops = f", --timeout in {_clock(self.deadline - time.time())}" if self.deadline else ""
        self.bar.set_postfix_str(f"best Dice {best:.3f}, front {len(front(trials, self.objectives, self.study))}{stops}")
        self.bar.refresh()

    def _finish(self, study, states, members) -> None:
        if self.bar is not None:
            self.bar.close()
        self._summary(study, states, members)

    def _eta(self) -> str:
        """``  [k/N, elapsed, ETA]`` for logs; the live bar shows the same itself."""
        if self.bar is not None:
            return ""
        done, elapsed = self.done, time.time() - self.started
        rate = elapsed / max(done - self.first, 1)
        left = max(self.budget - done, 0) * rate
        if self.deadline:  # the budget or the timeout, whichever comes first
            left = max(min(left, self.deadline - time.time()), 0.0)
        return f"  [{done}/{self.budget}, {_clock(elapsed)} elapsed, ETA {_clock(left)}]"


def bar_fits(stream) -> bool:
    """Whether ``stream`` is a terminal wide enough for the bar (``COLUMNS``, when set, wins)."""
    if not stream.isatty():
        return False
    try:
        columns = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").strip() else os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return False
    return columns >= MIN_BAR_COLUMNS


class QuietReporter(Reporter):
    """Messages on stderr, nothing per trial, the summary at the end."""

    def _start(self, study, config, data) -> None:
        self.note(self._describe(study, config, data))

    def note(self, text: str) -> None:
        print(text, file=self.err)

    def _trial(self, trial) -> None:
        pass

    def _finish(self, study, states, members) -> None:
        self._summary(study, states, members)


class JsonReporter(Reporter):
    """One JSON object per line on stdout: ``start``, ``note``, ``trial`` and ``end`` events."""

    def _start(self, study, config, data) -> None:
        self._json(event="start", study=study.study_name, storage=config.storage, budget=config.budget,
                   finished=self.done, data=data.describe())

    def note(self, text: str) -> None:
        self._json(event="note", text=text)

    def _trial(self, trial) -> None:
        self._json(event="trial", **trial_record(trial, self.objectives))

    def _finish(self, study, states, members) -> None:
        self._json(event="end", states=states, front=[trial_record(t, self.objectives) for t in members])

    def _json(self, **record) -> None:
        print(json.dumps(record), file=self.out, flush=True)


REPORTERS = {"bar": BarReporter, "quiet": QuietReporter, "json": JsonReporter}


def make_reporter(mode: str = "bar", out=sys.stdout, err=sys.stderr) -> Reporter:
    """The reporter of output ``mode``; ``ValueError`` lists the modes."""
    try:
        cls = REPORTERS[mode]
    except KeyError:
        raise ValueError(f"reporter: unknown output mode {mode!r}; choose one of {', '.join(REPORTERS)}") from None
    return cls(out, err)


def _spent(trials) -> int:
    """Finished trials as the budget counts them: a failed trial that was retried counts once, as its retry."""
    return sum(t.state.name in FINISHED for t in counted(trials))


def front(trials, objectives, study: str) -> list:
    """The trials of ``study`` on the Pareto front of ``objectives`` (:func:`studies.front.front_trials`)."""
    from studies.front import front_trials

    return front_trials(trials, objectives, study)


def _feasible(trial) -> bool:
    from studies.front import feasible

    return trial.state.name == "COMPLETE" and trial.values is not None and feasible(trial)


def trial_record(trial, objectives) -> dict:
    from studies.metrics import size_kb

    attrs = trial.user_attrs
    size = size_kb(attrs.get("size_bytes")) if attrs.get("size_bytes") else None
    return {
        "number": trial.number, "state": trial.state.name.lower(), "summary": attrs.get("summary"),
        "preset": attrs.get("preset"), "dice": attrs.get("dice"), "float_dice": attrs.get("float_dice"),
        "latency_ms": attrs.get("latency_ms"), "size_kb": round(size, 1) if size is not None else None,
        "seconds": (attrs.get("seconds") or {}).get("total"), "infeasible": attrs.get("infeasible"),
        "stopped_early": attrs.get("stopped_early"), "error": attrs.get("error"),
        "dice_ci95": attrs.get("dice_ci95"), "rung": attrs.get("rung"), "parent": attrs.get("parent"),
        "latency_cv": attrs.get("latency_cv"), "latency_unsteady": attrs.get("latency_unsteady"),
    }


def trial_line(trial, objectives) -> str:
    from studies.metrics import plus_minus

    record = trial_record(trial, objectives)
    name = f"[{record['preset']}] " if record["preset"] else ""
    if record["rung"]:
        name += f"(rung {record['rung']} of #{record['parent']}) "
    head = f"#{record['number']:<4} {name}{record['summary'] or '?'}"
    if record["state"] == "fail":
        return f"{head}  FAILED: {record['error'] or 'worker died'}"
    if record["state"] == "pruned":
        return f"{head}  stopped early: {record['stopped_early'] or ''}"
    figures = []
    if record["dice"] is not None:
        figures.append(f"Dice {record['dice']:.3f}" + plus_minus(record["dice_ci95"]))
    if record["latency_ms"] is not None:
        unsteady = f" (unsteady: CV {record['latency_cv']:.0%})" if record["latency_unsteady"] else ""
        figures.append(f"{record['latency_ms']:.2f} ms{unsteady}")
    if record["size_kb"] is not None:
        figures.append(f"{record['size_kb']:.0f} KB")
    if record["seconds"] is not None:
        figures.append(f"{record['seconds']:.0f} s")
    tail = f"  infeasible: {record['infeasible']}" if record["infeasible"] else ""
    return f"{head}  " + "  ".join(figures) + tail


def preset_lines(study, objectives) -> list[str]:
    """Which presets the search dominated, and by which trial (nothing when no preset was run)."""
    from studies.front import preset_verdicts, study_points

    verdicts = preset_verdicts(study_points(study), objectives)
    if not verdicts:
        return []
    beaten = sum(best is not None for _, best in verdicts)
    lines = [f"Presets dominated by a searched trial: {beaten} of {len(verdicts)}"]
    rungs = any(preset.rung for preset, _ in verdicts)  # with rungs: judged at its rung (studies.front.preset_verdicts)
    for preset, best in verdicts:
        by = f"dominated by #{best.number} {best.summary}" if best else "not dominated"
        at = f"rung {preset.rung}  " if rungs else ""
        lines.append(f"  {preset.preset:<20} #{preset.number:<4} {at}{by}")
    return lines
