"""``search confirm``: retrain chosen trials (and the ``unet`` preset, the reference) for E epochs
with S seeds, score them on validation and held-out test images, time them again, store each run.

A search trial's Dice comes from one seed and a short budget, scored on the validation images
that also chose it; a confirming run trains the spec on the study's whole training split with
:func:`run_one` (the pipeline of a trial: :func:`search.pipeline.train`, ``finish``, then
``score(split="test")``), which is also what ``search export --retrain-epochs`` runs
(:mod:`search.retrain`). Each run is one row of ``naslite_confirmations`` (subject ``trial:17``
or ``preset:unet``, epochs, seed; its figures and ``.tflite``); :mod:`studies.confirmed` reads
them back as means and spreads over seeds.

The test split: the study's own when it held one out (``test_fraction``, or a folder's
``test/``); otherwise confirm holds out ``--test-fraction`` of the images itself, with the
study's seed, and never trains on them. For a study split with validation fraction 0.2 and a
test fraction of 0.2, that test split is exactly the search's validation split (the search chose
on those images but never trained on them).

Runs are claimed one at a time in the store (:meth:`studies.store.ResultStore.claim_confirmation`)
under the storage-wide lock and kept alive by a heartbeat, so several workers (``--workers``, or
the same command on other machines sharing a PostgreSQL storage) share them, and a run whose
worker was killed (even by SIGKILL) is taken again: at once on the same machine, after
``STALE_SECONDS`` from another. Finished runs are never run again: the command resumes.
:mod:`search.confirm_workers` starts the worker processes (:func:`main`) and shows the progress.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import threading
import time

from search import pipeline
from search.config import SearchConfig
from space.presets import REFERENCE
from studies.metrics import size_kb

DEFAULT_TEST_FRACTION = 0.2
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0  # a claim without a heartbeat for this long is another worker's that died


# -- what to confirm ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Subject:
    """A spec to confirm: ``name`` is the store's subject (``trial:17``, ``preset:unet``)."""

    name: str
    spec: object  # space.spec.CandidateSpec
    label: str
    distilled: bool = False  # the search trained it with the study's --distill teacher


def trial_subjects(study, *, front: bool = False, top: int | None = None, trials=None) -> list[Subject]:
    """The trials ``--front``, ``--top K`` (the best K by non-dominated rank, then Dice) or
    ``--trials 3,17`` ask for; a bad choice is a ``LookupError`` naming what exists."""
    from studies.front import candidates, front as front_of, nondominated_ranks, study_points

    points = study_points(study)
    pool = candidates(points)
    if trials:
        by_number = {p.number: p for p in points}
        chosen = [by_number.get(number) for number in trials]
        wrong = [n for n, p in zip(trials, chosen) if p is None or not p.complete or not isinstance(p.attrs.get("spec"), dict)]
        if wrong:
            complete = ", ".join(str(p.number) for p in pool) or "none"
            raise LookupError(f"--trials: {', '.join(map(str, wrong))} is no complete trial with a spec in study "
                              f"{study.study_name}; complete trials: {complete}")
    elif top is not None:
        metrics = pool[0].objectives if pool else ()
        ranks = nondominated_ranks(pool, metrics)
        chosen = [p for _, p in sorted(zip(ranks, pool), key=lambda rp: (rp[0], -rp[1].values.get("dice", 0.0), rp[1].number))][:top]
    else:
        chosen = front_of(points)
    if not chosen:
        raise LookupError(f"study {study.study_name} has no complete feasible trial to confirm yet; see 'search status'")
    return [_trial_subject(p) for p in chosen if p.preset != REFERENCE]  # unet is the reference, confirmed anyway


def _trial_subject(point) -> Subject:
    from space import CandidateSpec

    spec = CandidateSpec.from_dict(point.attrs["spec"])
    return Subject(f"trial:{point.number}", spec, f"#{point.number} {point.summary or spec.summary}",
                   bool(point.attrs.get("distilled_from")))


def reference_subject(config: SearchConfig) -> Subject:
    from space.presets import preset

    spec = preset(REFERENCE, config.image_size, config.channels)
    return Subject(f"preset:{REFERENCE}", spec, f"[{REFERENCE}] {spec.summary}")


@dataclasses.dataclass(frozen=True)
class Plan:
    """One ``search confirm``: the study, its configuration, the subjects, epochs and seeds, and the data."""

    study: str
    config: SearchConfig
    subjects: tuple[Subject, ...]
    epochs: int
    seeds: tuple[int, ...]
    data_limit: int | None
    test_fraction: float  # of the images held out as test, when the study held none out

    @property
    def runs(self) -> list[tuple[Subject, int]]:
        """Every (subject, seed), the reference first, then seed by seed: the first seed of every
        subject is done before any second seed."""
        return [(subject, seed) for seed in self.seeds for subject in self.subjects]

    def to_dict(self) -> dict:
        return {"study": self.study, "config": self.config.to_dict(), "epochs": self.epochs, "seeds": list(self.seeds),
                "data_limit": self.data_limit, "test_fraction": self.test_fraction,
                "subjects": [{"name": s.name, "spec": s.spec.to_dict(), "label": s.label, "distilled": s.distilled}
                             for s in self.subjects]}

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        from space import CandidateSpec

        subjects = tuple(Subject(s["name"], CandidateSpec.from_dict(s["spec"]), s["label"], s["distilled"])
                         for s in data["subjects"])
        return cls(data["study"], SearchConfig.from_dict(data["config"]), subjects, data["epochs"],
                   tuple(data["seeds"]), data["data_limit"], data["test_fraction"])


def make_plan(study, config: SearchConfig, subjects: list[Subject], *, epochs: int, seeds: int,
              data_limit: int | None = None, test_fraction: float = DEFAULT_TEST_FRACTION) -> Plan:
    """The plan, its numbers checked (``ValueError``, one line each)."""
    for flag, value in (("--epochs", epochs), ("--seeds", seeds)):
        if value < 1:
            raise ValueError(f"{flag}: must be at least 1, got {value}")
    if data_limit is not None and data_limit < 3:
        raise ValueError(f"--data-limit: confirm needs at least 3 image pairs (train, validation, test), got {data_limit}")
    if not 0 < test_fraction < 0.8:
        raise ValueError(f"--test-fraction: must be above 0 and below 0.8, got {test_fraction}")
    everything = [reference_subject(config), *subjects]
    return Plan(study.study_name, config, tuple(everything), epochs, tuple(config.seed + k for k in range(seeds)),
                data_limit, test_fraction)


# -- the data -------------------------------------------------------------------------------------
def load_data(plan: Plan, image_size: int, channels: int, progress: bool = False):
    """The study's data at this size, split as the study split it, with a test split (the study's,
    else ``plan.test_fraction``: older studies held none out)."""
    from evaluators.data import load_dataset

    config = plan.config
    return load_dataset(
        config.data, image_size, channels, seed=config.seed, synthetic_count=config.synthetic_count,
        limit=plan.data_limit or config.data_limit, progress=progress, val_fraction=config.val_fraction,
        test_fraction=config.test_fraction or plan.test_fraction,
    )


def test_split_note(plan: Plan, data) -> str:
    """Where the test images come from, for the output and each run's figures."""
    from pathlib import Path

    count = len(data.test_images)
    if plan.config.data != "synthetic" and (Path(plan.config.data) / "test").is_dir():
        return f"{count} test images from {plan.config.data}/test"
    if plan.config.test_fraction and plan.data_limit not in (None, plan.config.data_limit):
        return (f"{count} test images: --data-limit {plan.data_limit} differs from the study's, so these are not "
                "the study's held-out images (the search may have trained on them); confirm never trains on them")
    if plan.config.test_fraction:
        return f"{count} test images: the study's held-out test split"
    same = plan.data_limit in (None, plan.config.data_limit) and plan.test_fraction == plan.config.val_fraction
    seen = ("; they are the search's validation images, which chose its trials but never trained them" if same else
            "; the search saw them, as training or validation images")
    return (f"{count} test images held out by confirm (--test-fraction {plan.test_fraction:g}, seed {plan.config.seed}): "
            f"the study held none out{seen}; confirm never trains on them")


# -- one run --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Run:
    """A spec trained once, converted, scored and timed: the one retraining path."""

    trained: pipeline.Trained
    evaluation: pipeline.Evaluation  # its figures hold test_dice, test_iou, ... when the data has a test split

    @property
    def has_test(self) -> bool:
        return "test_dice" in self.evaluation.figures


def run_one(spec, data, epochs: int, training: dict, device, protocol, clock, progress=None, teacher=None) -> Run:
    """Train ``spec`` on ``data``'s train split for ``epochs`` with ``training`` (its seed included)
    and ``teacher`` (``evaluators.distill.Teacher``, if any), convert, score validation (and test,
    if any) and time it: a search trial's steps."""
    trained = pipeline.train(spec, data, epochs, training, clock, progress, teacher=teacher)
    return Run(trained, pipeline.finish(spec, trained, data, device, protocol, clock))


def run_figures(run: Run, subject: Subject, seed: int, plan: Plan, data, device, protocol, clock) -> dict:
    """What the store keeps of one confirming run."""
    figures = {
        **run.evaluation.figures, "size_kb": size_kb(len(run.evaluation.tflite)),
        "summary": subject.spec.summary, "spec": subject.spec.to_dict(), "seed": seed, "epochs": plan.epochs,
        "epochs_run": run.trained.history.epochs, "data": data.name, "train_images": len(data.train_images),
        "val_images": len(data.val_images), "test_images": len(data.test_images), "test_split": test_split_note(plan, data),
        "val_dice_history": [round(float(d), 4) for d in run.trained.history.val_dice],
        "protocol": protocol.to_dict(), "device_info": device.info(), "training": run.trained.info,
        "latency_stats": {k: v for k, v in run.evaluation.latency.items() if k != "samples_ms"},
        "seconds": clock.summary(),
    }
    return pipeline.jsonable(figures)


# -- the worker: claim, run, store, until nothing is left -----------------------------------------
def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def is_stale(claim: dict) -> bool:
    """A claim whose heartbeat stopped, or whose process on this machine is gone."""
    host, _, pid = str(claim.get("claimed_by", "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return True
    return time.time() - float(claim.get("heartbeat") or 0) > STALE_SECONDS


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_next(plan: Plan, store, owner: str):
    """The next (subject, seed) nobody has run or is running, now claimed by ``owner``; ``None``
    when every run is done; ``"wait"`` when the rest are under way elsewhere."""
    from studies.locks import storage_lock

    done = {(c["subject"], c["seed"]) for c in store.confirmations(plan.study) if c["epochs"] == plan.epochs}
    left = [(subject, seed) for subject, seed in plan.runs if (subject.name, seed) not in done]
    if not left:
        return None
    with storage_lock(plan.config.storage, f"confirm:{plan.study}"):
        for subject, seed in left:
            if store.claim_confirmation(plan.study, subject.name, plan.epochs, seed, owner, is_stale):
                return subject, seed
    return "wait"


class Heartbeat:
    """Renews a claim every ``HEARTBEAT_SECONDS`` while a run trains (a ``with`` block)."""

    def __init__(self, store, plan: Plan, subject: Subject, seed: int, owner: str):
        self.key = (plan.study, subject.name, plan.epochs, seed, owner)
        self.store, self.stop = store, threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self):
        while not self.stop.wait(HEARTBEAT_SECONDS):
            self.store.beat_confirmation(*self.key)

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join()


def work(plan: Plan, device_token: str | None = None) -> int:
    """Claim and run confirming runs until none is left; returns how many this worker ran."""
    from evaluators.devices import open_devices
    from search.worker import _release_memory
    from studies.store import ResultStore

    config, owner, ran, datasets, teachers = plan.config, owner_name(), 0, {}, []
    device = open_devices(list(config.devices), device_token, config.threads)
    protocol = pipeline.latency_protocol(config.threads, config.latency_clock)
    with ResultStore(config.storage) as store:
        while (claimed := claim_next(plan, store, owner)) is not None:
            if claimed == "wait":
                time.sleep(5.0)  # another worker's runs: wait for them to finish or go stale
                continue
            subject, seed = claimed
            size = (subject.spec.input_size, subject.spec.input_channels)
            data = datasets.get(size) or datasets.setdefault(size, load_data(plan, *size))
            clock = pipeline.Stopwatch()
            teacher = _teacher(subject, data, teachers, store, config)
            with Heartbeat(store, plan, subject, seed, owner):
                run = run_one(subject.spec, data, plan.epochs, {**config.training, "seed": seed}, device, protocol, clock,
                              teacher=teacher)
                figures = {**run_figures(run, subject, seed, plan, data, device, protocol, clock),
                           "distilled_from": config.distill if teacher is not None else None}
            store.save_confirmation(plan.study, subject.name, plan.epochs, seed, figures, run.evaluation.tflite)
            ran += 1
            _release_memory()
    return ran


def _teacher(subject: Subject, data, teachers: list, store, config):
    """The study's teacher for a subject the search distilled, as the search trained it; ``None``
    when its targets do not fit these training images (another --data-limit or input size)."""
    from search.teacher import teacher_of

    if not subject.distilled:
        return None
    if not teachers:
        teachers.append(teacher_of(config, store))
    teacher = teachers[0]
    fits = teacher is not None and teacher.targets.shape[:3] == data.train_masks.shape[:3]
    return teacher if fits else None


def main(job_path: str) -> int:
    """``python -m search.confirm JOB.json``: one worker process of ``search confirm``."""
    from search.worker import _leave_with_parent, _limit_threads

    job = json.loads(open(job_path).read())
    _leave_with_parent()
    _limit_threads(job["workers"])
    work(Plan.from_dict(job["plan"]), os.environ.get("NAS_LITE_DEVICE_TOKEN"))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1]))
