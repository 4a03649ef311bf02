"""The coordinator of ``search confirm``: worker processes (``python -m search.confirm JOB``), a
progress bar (runs k/N, ETA) and one line per stored run. See :mod:`search.confirm`."""

from __future__ import annotations

import json
import os
import time

from search import pipeline
from search.confirm import Plan


def confirm(plan: Plan, workers: int = 1, device_token: str | None = None, out=None, err=None) -> int:
    """Run ``plan`` with ``workers`` processes, showing a bar (runs k/N, ETA) and a line per run;
    returns the runs that were done before."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from search.loop import _last_line, _root

    from studies.store import ResultStore

    out, err = out or sys.stdout, err or sys.stderr
    with ResultStore(plan.config.storage) as store:
        if len(_finished(store, plan, {(s.name, seed) for s, seed in plan.runs})) == len(plan.runs):
            print(f"all {len(plan.runs)} runs were done before", file=err)
            return len(plan.runs)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_root(), os.environ.get("PYTHONPATH")]))}
    if device_token:
        environment["NAS_LITE_DEVICE_TOKEN"] = device_token
    with tempfile.TemporaryDirectory(prefix="nas-lite-confirm-") as folder:
        job = Path(folder) / "job.json"
        job.write_text(json.dumps({"plan": plan.to_dict(), "workers": workers}))
        processes = []
        for index in range(workers):
            log = Path(folder) / f"worker{index}.log"
            process = subprocess.Popen([sys.executable, "-m", "search.confirm", str(job)], stdout=log.open("w"),
                                       stderr=subprocess.STDOUT, env=environment, stdin=subprocess.DEVNULL)
            processes.append((process, log))
        try:
            before = _watch(plan, [p for p, _ in processes], out, err)
        finally:
            for process, _ in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=30)
        failed = [(p, log) for p, log in processes if p.returncode not in (0, None)]
        if failed:
            raise RuntimeError(f"confirm worker stopped with status {failed[0][0].returncode}: {_last_line(failed[0][1])}")
    return before


def _watch(plan: Plan, processes, out, err) -> int:
    """Report runs as the store gets them until every worker has exited."""
    from studies.store import ResultStore

    keys = {(subject.name, seed) for subject, seed in plan.runs}
    labels = {subject.name: subject.label for subject in plan.subjects}
    with ResultStore(plan.config.storage) as store:
        seen = _finished(store, plan, keys)
        progress = Progress(len(keys), len(seen), out, err)
        while True:
            running = any(p.poll() is None for p in processes)
            for row in sorted(_finished(store, plan, keys).values(), key=lambda r: r["created"]):
                if (row["subject"], row["seed"]) not in seen:
                    seen[(row["subject"], row["seed"])] = row
                    progress.step(run_line(labels[row["subject"]], row["seed"], row["figures"]))
            if not running:
                break
            time.sleep(1.0)
        progress.close()
    left = len(keys) - len(seen)
    if left:
        raise RuntimeError(f"{left} confirming run(s) were not done; run the same command again to continue them")
    return progress.first


def _finished(store, plan: Plan, keys) -> dict:
    rows = [row for row in store.confirmations(plan.study) if row["epochs"] == plan.epochs]
    return {(r["subject"], r["seed"]): r for r in rows if (r["subject"], r["seed"]) in keys}


def run_line(label: str, seed: int, figures: dict) -> str:
    test = f", test Dice {figures['test_dice']:.3f}" if figures.get("test_dice") is not None else ""
    return (f"{label} seed {seed}: validation Dice {figures['dice']:.3f}{test}, "
            f"{figures['latency_ms']:.2f} ms, {figures['size_kb']:.0f} KB")


class Progress:
    """A tqdm bar on a terminal's stderr; elsewhere each line ends with [k/N, elapsed, ETA]."""

    def __init__(self, total: int, done: int, out, err):
        self.total, self.done, self.first, self.out = total, done, done, out
        self.started = time.time()
        self.bar = None
        if done:
            print(f"{done} of {total} runs were done before: continuing", file=err, flush=True)
        if err.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc="confirm", unit="run", file=err, dynamic_ncols=True)

    def step(self, line: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.write(line, file=self.out)
            return
        elapsed = time.time() - self.started
        eta = elapsed / max(self.done - self.first, 1) * (self.total - self.done)
        print(f"{line}  [{self.done}/{self.total}, {pipeline.duration(elapsed)} elapsed, ETA {pipeline.duration(eta)}]",
              file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
