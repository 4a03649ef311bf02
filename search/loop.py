"""The search: one study, a budget of trials, worker processes that pop trials until it is spent.

The budget is made concrete in the storage: the coordinator tops the study up with WAITING
trials (enqueued presets first, then empty ones the sampler fills) until it holds ``budget``
trials, under a storage-wide lock. Workers, on this machine or on others sharing a PostgreSQL
storage, only ever pop WAITING trials, so the study ends with exactly the budget however many
workers run. A worker killed mid-trial leaves a RUNNING trial whose heartbeat stops; the next
worker to look fails it and Optuna's retry callback enqueues it again, in its place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from search.config import SearchConfig, merge_with_stored
from studies.metrics import WITHDRAWN, withdrawn

FINISHED = ("COMPLETE", "PRUNED", "FAIL")
TEMP_PREFIX = "nas-lite-"


def run_search(config: SearchConfig, explicit: set[str], reporter) -> "optuna.Study":
    """Create or continue the study, spend its budget with ``config.workers`` processes, report."""
    import warnings

    import optuna

    from studies.front import CONSTANT_MASK
    from studies.storage import new_sqlite_file, open_storage, remove_if_unused, shown

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if "data" in explicit:
        _check_data_folder(config.data)  # before the storage: "no such folder" says more than a conflict
    reporter.note(f"opening study {config.study!r} in {shown(config.storage)}")  # at once: what follows takes seconds
    new_file = new_sqlite_file(config.storage)
    storage = open_storage(config.storage)
    try:
        config, exists = _settings(config, explicit, storage)
        data = _load_data(config, reporter)  # bad data stops here, before a study is created
        _check_devices(config)  # so does a board that cannot measure, before any training is spent
        _check_teacher(config, storage)  # and a --distill trial:N@STUDY that is not stored
    except Exception:
        if new_file:
            remove_if_unused(storage, new_file)  # a typo in --data leaves no stray studies.db behind
        raise
    if not exists:
        _create_study(config, storage)
    study = optuna.load_study(study_name=config.study, storage=storage)
    study.set_user_attr(CONSTANT_MASK, [round(float(d), 4) for d in data.constant_mask_dice()])  # the baseline 'status' names
    taken_back = _top_up(study, config)  # first: trials it withdraws are not reported as failed
    reporter.begin(study, config, data)
    if taken_back:
        reporter.note(f"--budget {config.budget}: withdrew {taken_back} waiting trial(s) beyond it; they will not run")
    done = sum(trial.state.name in FINISHED for trial in counted(study.get_trials(deepcopy=False)))
    if done >= config.budget:  # no worker to start (each would import TensorFlow for nothing)
        reporter.note(f"the study has finished {done} trials, its budget of {config.budget}: nothing to run "
                      "(a higher --budget continues it)")
    else:
        _run_workers(study, config, data, reporter)
    if config.verify_front and config.predicted_device:
        _verify_front(study, config, reporter)
    reporter.end(study)
    return study


def _run_workers(study, config: SearchConfig, data, reporter) -> None:
    """Run the study's waiting trials in ``config.workers`` worker processes, reporting as they finish."""
    _prepare_teacher(config, data, reporter)
    _remove_orphans()
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as folder:
        (Path(folder) / "owner").write_text(str(os.getpid()))
        data_file = _save_data(data, Path(folder))
        deadline = time.time() + config.timeout if config.timeout else None
        workers = [_spawn_worker(config, data_file, index, Path(folder), deadline) for index in range(config.workers)]
        _watch(study, workers, reporter)


def _settings(config: SearchConfig, explicit: set[str], storage) -> tuple[SearchConfig, bool]:
    """The configuration to run with, and whether the study exists already."""
    import optuna

    names = {summary.study_name: summary for summary in optuna.get_all_study_summaries(storage)}
    if config.study not in names:
        return config, False
    stored = names[config.study].user_attrs.get("config")
    if stored is None and names[config.study].n_trials == 0:
        return config, False  # its creation was interrupted, or is under way in another process
    if stored is None:
        raise ValueError(f"--study {config.study}: this study was not made by nas-lite; choose another name")
    return merge_with_stored(config, explicit, stored), True


def _create_study(config: SearchConfig, storage) -> None:
    import optuna

    study = optuna.create_study(study_name=config.study, storage=storage, directions=config.directions, load_if_exists=True)
    if "config" in study.user_attrs:
        return  # another process created it a moment ago
    study.set_metric_names(list(config.objectives))
    study.set_user_attr("constraints", config.constraints)
    study.set_user_attr("config", config.to_dict())  # last: a study with its config is complete


def _check_teacher(config: SearchConfig, storage) -> None:
    from search.teacher import stored_teacher

    stored_teacher(config, storage)


def _prepare_teacher(config: SearchConfig, data, reporter) -> None:
    from search.native_log import native_stderr_to_log
    from search.teacher import prepare
    from studies.store import ResultStore

    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0"  # search --debug shows TensorFlow's chatter
    with ResultStore(config.storage) as store, native_stderr_to_log(quiet and bool(config.distill), sys.stderr, "teacher"):
        prepare(config, data, store, reporter.note)


def _check_data_folder(data: str) -> None:
    from evaluators.data import SYNTHETIC, find_pairs

    if data != SYNTHETIC:
        find_pairs(data)


def _load_data(config: SearchConfig, reporter):
    import warnings

    from evaluators.data import SYNTHETIC, load_dataset

    started = time.time()
    what = f"{config.data_limit or config.synthetic_count} generated pairs" if config.data == SYNTHETIC else config.data
    reporter.note(f"loading data: {what} at {config.image_size}x{config.image_size} ...")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the reporter shows data.warnings, once
        data = load_dataset(
            config.data, config.image_size, config.channels, seed=config.seed,
            synthetic_count=config.synthetic_count, limit=config.data_limit, progress=reporter.shows_progress,
            val_fraction=config.val_fraction, test_fraction=config.test_fraction,
        )
    reporter.note(f"loaded in {time.time() - started:.1f} s")
    for note in data.warnings:
        reporter.note(f"warning: {note}")
    return data


def _check_devices(config: SearchConfig) -> None:
    """Ask every board for its info once: a malformed URL, an unreachable board or a refused token
    is an error now rather than a failed trial after each training; so is a predicted latency
    without a stored model of its device."""
    from evaluators.devices import open_devices
    from search.calibrate import study_device
    from studies.store import ResultStore

    with ResultStore(config.storage) as store:
        study_device(config, store)
    if config.predicted_device and not config.verify_front:
        return  # the board need not be attached
    device = open_devices(list(config.devices), config.device_token, config.threads)
    for board in getattr(device, "devices", []):
        board.info()


def _verify_front(study, config: SearchConfig, reporter) -> None:
    """Time the front of a study searched on predicted latency on the attached device; the measured
    latency is stored beside the predicted one (``verified_front``, and the measurements table)."""
    from evaluators.devices import open_devices
    from search.pipeline import jsonable, latency_protocol
    from studies.front import front, study_points
    from studies.store import ResultStore

    device = open_devices(list(config.devices), config.device_token, config.threads)
    protocol = latency_protocol(config.threads, config.latency_clock)
    verified = {}
    with ResultStore(config.storage) as store:
        for point in front(study_points(study)):
            stats = device.measure(store.artifact(point.trial_id), protocol)
            store.save_measurement(point.trial_id, device.name, device.info(), stats.get("protocol", {}), jsonable(stats))
            verified[str(point.number)] = {"predicted_ms": point.values["latency_ms"], "measured_ms": stats["median_ms"],
                                           "device": device.name}
            reporter.note(f"verified #{point.number}: predicted {point.values['latency_ms']:.2f} ms, "
                          f"measured {stats['median_ms']:.2f} ms on {device.name}")
    study.set_user_attr("verified_front", verified)


def counted(trials) -> list:
    """The trials that count against the budget, one per candidate: all but failed trials that were
    retried, trials withdrawn by a lower budget and promotions to a higher rung (search.rungs)."""
    retried = {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}
    return [trial for trial in trials
            if trial.number not in retried and not withdrawn(trial) and "parent" not in trial.user_attrs]


def _top_up(study, config: SearchConfig) -> int:
    """Make the study hold ``config.budget`` trials: enqueue WAITING ones (presets first) when it
    holds fewer; when it holds more (continued with a lower budget), withdraw WAITING ones, the
    newest first, so that no more than asked is run. Trials already run or running stay. Returns
    how many were withdrawn."""
    import optuna

    from studies.locks import storage_lock
    from studies.optuna_internals import fail_stale_trials

    with storage_lock(config.storage, f"budget:{config.study}"):
        fail_stale_trials(study)
        trials = counted(study.get_trials(deepcopy=False))
        missing = config.budget - len(trials)
        taken_back = _withdraw(study, trials, -missing, config.budget) if missing < 0 else 0
        if config.enqueue_presets:
            done = {trial.user_attrs.get("preset") for trial in trials}
            for name in [name for name in _preset_names(config) if name not in done][:max(missing, 0)]:
                _enqueue_preset(study, config, name)
                missing -= 1
        for _ in range(max(missing, 0)):
            study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING))
    return taken_back


def _withdraw(study, trials, count: int, budget: int) -> int:
    """Mark up to ``count`` WAITING trials withdrawn, then fail them: ``counted`` leaves them out, and
    no worker pops a failed trial. Marked first, so that a kill in between leaves an ordinary WAITING
    trial; one another process popped a moment ago is failed under its worker, which drops it.
    Returns how many were withdrawn."""
    import optuna

    waiting = [trial for trial in trials if trial.state == optuna.trial.TrialState.WAITING]
    taken = 0
    for trial in sorted(waiting, key=lambda trial: trial.number, reverse=True)[:count]:
        try:
            study._storage.set_trial_system_attr(trial._trial_id, WITHDRAWN, f"the budget was lowered to {budget}")
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            taken += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker ran it to the end meanwhile: it counts
    return taken


def _enqueue_preset(study, config: SearchConfig, name: str) -> None:
    """A preset inside the space is enqueued with its parameters, so the sampler learns from its
    result; one outside a narrowed space is built from its name and teaches the sampler nothing."""
    from space.presets import preset
    from space.sampling import in_space, params_of

    spec = preset(name, config.image_size, config.channels)
    if in_space(spec, config.space):
        study.enqueue_trial(params_of(spec, config.space), user_attrs={"preset": name, "preset_params": True})
    else:
        study.enqueue_trial({}, user_attrs={"preset": name})


def _preset_names(config: SearchConfig) -> list[str]:
    """The presets in the order they are enqueued: each int8 twin right after its float preset, so
    the worker that trained the float converts the twin from the same training
    (``search.trial.TrainedModels``) before later trainings, or a promotion's, push it out."""
    from space.presets import FLOAT_PRESETS, presets_for

    floats = list(FLOAT_PRESETS)
    return sorted(presets_for(config.space.block_kinds), key=lambda name: floats.index(name.removesuffix("-int8")))


def _remove_orphans() -> None:
    """Delete the temporary folders (the dataset copy, worker logs) of searches that were SIGKILLed."""
    import shutil

    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            os.kill(int((folder / "owner").read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            pass  # not ours to judge: no owner file yet, or another user's search


def _save_data(data, folder: Path) -> Path:
    from evaluators.data import save_arrays

    path = folder / "data.npz"
    save_arrays(data, path)
    return path


def _spawn_worker(config: SearchConfig, data_file: Path, index: int, folder: Path, deadline) -> subprocess.Popen:
    job = folder / f"worker{index}.json"
    job.write_text(json.dumps({"config": config.to_dict(), "data": str(data_file), "index": index, "deadline": deadline}))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_root(), os.environ.get("PYTHONPATH")]))}
    if config.device_token:
        environment["NAS_LITE_DEVICE_TOKEN"] = config.device_token
    log = open(folder / f"worker{index}.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "search.worker", str(job)], stdout=log, stderr=subprocess.STDOUT,
                               env=environment, stdin=subprocess.DEVNULL)
    process.log_path = folder / f"worker{index}.log"
    return process


def _root() -> str:
    return str(Path(__file__).resolve().parents[1])


def _watch(study, workers, reporter) -> None:
    """Report trials as they finish until every worker has exited; stop workers if interrupted."""
    try:
        while True:
            running = [worker for worker in workers if worker.poll() is None]
            reporter.update(study.get_trials(deepcopy=False))
            if not running:
                break
            time.sleep(1.0)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    failed = [worker for worker in workers if worker.returncode not in (0, None)]
    if failed:
        raise RuntimeError(f"worker stopped with status {failed[0].returncode}: {_last_line(failed[0].log_path)}")


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1].strip()
