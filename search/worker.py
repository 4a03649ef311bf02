"""A worker process: ``python -m search.worker JOB.json``; pops WAITING trials until none is left.

It leaves when the coordinator that started it is gone (so a killed ``search start`` stops its
workers too), and waits for trials other workers are running, so that one of them dying
mid-trial is noticed through the heartbeat and its trial retried.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import traceback


def main(job_path: str) -> int:
    job = json.loads(open(job_path).read())
    _leave_with_parent()
    from search.config import SearchConfig

    config = SearchConfig.from_dict(job["config"])
    config = config.replace(device_token=os.environ.get("NAS_LITE_DEVICE_TOKEN"))
    run_worker(config, job["data"], job["index"], job.get("deadline"))
    return 0


def run_worker(config, data_path: str, index: int, deadline: float | None = None) -> None:
    import optuna

    from studies.optuna_internals import fail_stale_trials, pop_waiting_trial_id
    from search.rungs import claim_promotion
    from search.samplers import make_sampler
    from search.trial import evaluate

    idle_since = time.perf_counter()  # the worker's start-up counts as time before its first trial
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _limit_threads(config.workers)
    study = _load_study(config, index)
    context = _context(config, data_path)
    _record_devices(study, context.device)
    drift = _drift_watch(study, config, context)
    while deadline is None or time.time() < deadline:
        fail_stale_trials(study)
        trial_id = claim_promotion(study, config, context.trained.numbers()) or pop_waiting_trial_id(study)  # promotions first, as in ASHA
        if trial_id is None:
            if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                return
            time.sleep(2.0)  # another worker's trial: wait for it to finish or go stale
            idle_since = time.perf_counter()  # waiting is not overhead
            continue
        study.sampler = make_sampler(config, study._storage.get_trial_number_from_id(trial_id))
        try:
            idle_since = _run_trial(study, optuna.Trial(study, trial_id), context, evaluate, idle_since)
            if drift is not None:
                drift = _checked(drift, study._storage.get_trial_number_from_id(trial_id), trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            traceback.print_exc()  # another worker found its heartbeat stale, failed it and queued a retry: drop it


def _drift_watch(study, config, context):
    """The worker's :class:`search.drift.DriftWatch`, or ``None`` (``--drift-every 0``, or predicted latency)."""
    if not config.drift_every or config.predicted_device:
        return None
    from search.drift import DriftWatch, reference_tflite

    try:
        reference = reference_tflite(config.image_size, config.channels)
        return DriftWatch(study, context.device, context.protocol, context.store, reference, config.drift_every)
    except Exception:  # noqa: BLE001 - a board that cannot time the reference fails the trials, named, not the worker
        traceback.print_exc()
        return None


def _checked(drift, number: int, trial_id: int):
    """``drift`` after its check following trial ``number``; ``None`` once the device cannot time it."""
    try:
        drift.timed(number, trial_id)
        return drift
    except Exception:  # noqa: BLE001 - the trials go on without drift control; the log says why
        traceback.print_exc()
        return None


def _record_devices(study, device) -> None:
    """What ``search status`` says of the device(s) that time this study's trials (a pool: each board)."""
    from studies.status import DEVICE_PREFIX

    for board in getattr(device, "devices", [device]):
        try:
            info = board.info()
        except Exception:  # noqa: BLE001 - a board that does not answer now fails its trials, named
            traceback.print_exc()
            continue
        keep = {key: info.get(key) for key in ("cpu", "cpu_features", "cores", "machine", "board", "runtime")}
        study.set_user_attr(DEVICE_PREFIX + board.name, keep)


def _run_trial(study, trial, context, evaluate, idle_since: float) -> float:
    """Evaluate ``trial`` and tell the study; returns when the evaluation ended. The worker's time
    since the previous one ended (storage, memory release, start-up) is recorded as ``seconds_before``."""
    import optuna
    from studies.optuna_internals import heartbeat_thread

    from search.trial import front_members

    trial.set_user_attr("seconds_before", round(time.perf_counter() - idle_since, 3))
    trial.set_user_attr("dice_history", [])
    with heartbeat_thread(trial._trial_id, study._storage):
        state, values = optuna.trial.TrialState.COMPLETE, None
        try:
            values = evaluate(trial, context, lambda: front_members(study))
        except optuna.TrialPruned:
            state = optuna.trial.TrialState.PRUNED
        except Exception as error:  # noqa: BLE001 - a failed trial is recorded and the search goes on
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
            traceback.print_exc()
            state = optuna.trial.TrialState.FAIL
        ended = time.perf_counter()
        try:
            _tell(study, trial, values, state)
        finally:
            _release_memory()
    return ended


def _tell(study, trial, values, state) -> None:
    """``study.tell``; a trial another process finished meanwhile (it failed it as stale while this
    worker stalled after its last write) raises UpdateFinishedTrialError, as any other write of it
    does, so that the worker drops the run instead of dying on Optuna's ValueError."""
    import optuna

    try:
        study.tell(trial, values, state=state)
    except ValueError:
        if not study._storage.get_trial(trial._trial_id).state.is_finished():
            raise
        raise optuna.exceptions.UpdateFinishedTrialError(
            f"trial {trial.number} was finished by another process while this worker ran it") from None


def _load_study(config, index: int):
    import optuna

    from search.samplers import make_sampler
    from studies.storage import open_storage

    storage = open_storage(config.storage)
    return optuna.load_study(study_name=config.study, storage=storage, sampler=make_sampler(config, index))


def _context(config, data_path: str):
    from evaluators.data import load_arrays
    from search.calibrate import study_device
    from search.pipeline import latency_protocol
    from search.teacher import teacher_of
    from search.trial import TrialContext
    from studies.store import ResultStore

    data = load_arrays(data_path)
    store = ResultStore(config.storage)
    device, latency_model = study_device(config, store)
    return TrialContext(config, data, device, store, latency_protocol(config.threads, config.latency_clock),
                        teacher=teacher_of(config, store), latency_model=latency_model)


def _limit_threads(workers: int) -> None:
    """Share the cores between workers, so that two trainings do not fight over every core."""
    from space import _tf

    tf = _tf.tensorflow()
    cores = max(1, (os.cpu_count() or 1) // workers)
    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, cores))


def _release_memory() -> None:
    from space import _tf

    _tf.keras().backend.clear_session()
    gc.collect()


def _leave_with_parent() -> None:
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
