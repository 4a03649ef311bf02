"""What ``search start`` shows: a live bar (trial k/N, elapsed, ETA, best Dice, front size) and
one line per finished trial; ``--quiet`` shows only the end, ``--json`` one JSON object per line.
Where stderr is not a terminal (a log file, CI) the bar's figures end each trial's line instead."""

from __future__ import annotations

import json
import sys
import time

from search.loop import FINISHED, counted


class Reporter:
    def __init__(self, mode: str = "bar", out=sys.stdout, err=sys.stderr):
        self.mode, self.out, self.err = mode, out, err
        self.bar = None
        self.seen: set[int] = set()
        self.started = time.time()

    @property
    def shows_progress(self) -> bool:
        return self.mode == "bar"

    def begin(self, study, config, data) -> None:
        self.objectives = list(config.objectives)
        self.budget = config.budget
        trials = study.get_trials(deepcopy=False)
        self.seen = {t.number for t in trials if t.state.name in FINISHED}
        self.done = _spent(trials)
        if self.mode == "json":
            self._json(event="start", study=study.study_name, storage=config.storage, budget=config.budget,
                       finished=self.done, data=data.describe())
            return
        self.note(f"study {study.study_name!r} in {config.storage}: budget {config.budget}, "
                  f"{self.done} finished before; {data.describe()}; {config.workers} worker(s)")
        self.first = self.done
        if self.mode == "bar" and self.err.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=config.budget, initial=min(self.done, config.budget), desc="trials",
                            unit="trial", file=self.err, dynamic_ncols=True, smoothing=0.1)

    def note(self, text: str) -> None:
        if self.mode == "json":
            self._json(event="note", text=text)
        elif self.mode == "bar":
            self._write(text)
        else:
            print(text, file=self.err)

    def update(self, trials) -> None:
        finished = [t for t in trials if t.state.name in FINISHED and t.number not in self.seen]
        self.done = _spent(trials)
        for trial in sorted(finished, key=lambda t: t.number):
            self.seen.add(trial.number)
            if self.mode == "json":
                self._json(event="trial", **trial_record(trial, self.objectives))
            elif self.mode == "bar":
                self._write(trial_line(trial, self.objectives) + self._eta())
        if self.bar is not None:
            self.bar.n = min(self.done, self.budget)
            best = max((t.user_attrs.get("dice", 0.0) for t in trials if _feasible(t)), default=0.0)
            self.bar.set_postfix_str(f"best Dice {best:.3f}, front {len(front(trials, self.objectives))}")
            self.bar.refresh()

    def end(self, study) -> None:
        if self.bar is not None:
            self.bar.close()
        trials = study.get_trials(deepcopy=False)
        states = {}
        for trial in trials:
            states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
        members = front(trials, self.objectives)
        if self.mode == "json":
            self._json(event="end", states=states, front=[trial_record(t, self.objectives) for t in members])
            return
        print(f"\n{study.study_name}: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items())), file=self.out)
        print(f"Pareto front ({len(members)} trials):", file=self.out)
        for trial in sorted(members, key=lambda t: -t.user_attrs.get("dice", 0)):
            print("  " + trial_line(trial, self.objectives), file=self.out)
        print("Next: search dashboard | search export --pick knee -o model.tflite", file=self.out)

    def _eta(self) -> str:
        """``  [k/N, elapsed, ETA]`` for logs; the live bar shows the same itself."""
        if self.bar is not None:
            return ""
        done, elapsed = self.done, time.time() - self.started
        rate = elapsed / max(done - self.first, 1)
        left = max(self.budget - done, 0) * rate
        return f"  [{done}/{self.budget}, {_clock(elapsed)} elapsed, ETA {_clock(left)}]"

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(text, file=self.out)

    def _json(self, **record) -> None:
        print(json.dumps(record), file=self.out, flush=True)


def _spent(trials) -> int:
    """Finished trials as the budget counts them: a failed trial that was retried counts once, as its retry."""
    return sum(t.state.name in FINISHED for t in counted(trials))


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


def front(trials, objectives) -> list:
    """The trials on the Pareto front of ``objectives`` (:func:`studies.front.front_trials`)."""
    from studies.front import front_trials

    return front_trials(trials, objectives)


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
    }


def trial_line(trial, objectives) -> str:
    record = trial_record(trial, objectives)
    name = f"[{record['preset']}] " if record["preset"] else ""
    head = f"#{record['number']:<4} {name}{record['summary'] or '?'}"
    if record["state"] == "fail":
        return f"{head}  FAILED: {record['error'] or 'worker died'}"
    if record["state"] == "pruned":
        return f"{head}  stopped early: {record['stopped_early'] or ''}"
    figures = []
    if record["dice"] is not None:
        figures.append(f"Dice {record['dice']:.3f}")
    if record["latency_ms"] is not None:
        figures.append(f"{record['latency_ms']:.2f} ms")
    if record["size_kb"] is not None:
        figures.append(f"{record['size_kb']:.0f} KB")
    if record["seconds"] is not None:
        figures.append(f"{record['seconds']:.0f} s")
    tail = f"  infeasible: {record['infeasible']}" if record["infeasible"] else ""
    return f"{head}  " + "  ".join(figures) + tail
