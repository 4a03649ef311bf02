"""Real worker processes on one SQLite file: a SIGKILLed trial is failed and retried; two writers never crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import optuna

from studies import METRICS, storage
from studies.optuna_internals import pop_waiting_trial_id
from studies.store import ResultStore
from tests.conftest import ROOT

WORKER = textwrap.dedent("""
    import sys, time, warnings
    import optuna
    from studies import METRICS, storage
    from studies.store import ResultStore

    url, name, mode, trials, start_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    opened = storage.open_storage(url, heartbeat_interval=1, grace_period=2)
    while time.time() < start_at:
        time.sleep(0.005)
    study = optuna.create_study(storage=opened, study_name=name, directions=list(METRICS.values()), load_if_exists=True)
    study.set_metric_names(list(METRICS))  # both workers write the same study attribute at once
    store = ResultStore(url)

    def objective(trial):
        if mode == "hang":
            print("running", flush=True)
            time.sleep(600)
        x = trial.suggest_float("x", 0, 1)
        trial.set_user_attr("summary", f"x={x:.3f}")
        store.save_artifact(trial._trial_id, name, trial.number, f"model {trial.number}".encode() * 100)
        store.save_measurement(trial._trial_id, "local", {}, {"runs": 1}, {"p50_ms": x})
        return x, 10 * x, 100 - x

    study.optimize(objective, n_trials=trials)
    print("done", flush=True)
""")


def _worker(url, name, mode, trials, start_at=0.0):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER, url, name, mode, str(trials), str(start_at)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_sigkilled_running_trial_is_failed_and_retried(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    worker = _worker(url, "s", "hang", 1)
    assert worker.stdout.readline().strip() == "running", worker.stderr.read()  # killed at once, before any
    # beat of Optuna's heartbeat thread: open_storage records the first beat with the trial itself
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="s", storage=storage.open_storage(url, heartbeat_interval=1, grace_period=2))
    assert [t.state.name for t in study.trials] == ["RUNNING"]
    time.sleep(3.5)  # let the heartbeat go stale (grace period 2 s)

    study.optimize(lambda trial: (0.5, 1.0, 1.0), n_trials=1)
    trials = study.trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[1].system_attrs["failed_trial"] == 0  # the retry of the killed trial
    assert trials[1].params == trials[0].params


def test_running_trial_that_never_beat_is_failed_and_retried(tmp_path):
    """A worker killed between a trial's state change and its first beat (or a database written by an
    older version) leaves a RUNNING trial without a heartbeat row; Optuna alone would wait for it forever."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = storage.open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="s", storage=opened, directions=list(METRICS.values()))
    study.enqueue_trial({"x": 0.25})
    trial_id = pop_waiting_trial_id(study)
    with opened.engine.begin() as connection:  # undo the first beat, as if the kill came in between
        connection.exec_driver_sql(f"delete from trial_heartbeats where trial_id = {trial_id}")
    optuna.storages.fail_stale_trials(study)
    assert [t.state.name for t in study.trials] == ["RUNNING"]  # younger than the grace period: left alone
    time.sleep(2.5)

    optuna.storages.fail_stale_trials(study)
    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]
    assert study.trials[1].system_attrs["failed_trial"] == 0


def test_first_beat_comes_before_the_trial_is_running(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = storage.open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="s", storage=opened, directions=list(METRICS.values()))
    study.enqueue_trial({"x": 0.25})
    states_at_beat = []
    beat = opened.record_heartbeat
    opened.record_heartbeat = lambda trial_id: (states_at_beat.append(opened.get_trial(trial_id).state.name), beat(trial_id))
    pop_waiting_trial_id(study)
    assert states_at_beat[0] == "WAITING"  # so a kill between the two steps never leaves a silent RUNNING trial


def test_two_workers_on_one_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"  # fresh: both workers also race to create the tables
    start_at = time.time() + 3.0
    workers = [_worker(url, "shared", "run", 15, start_at) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
        assert "locked" not in err and out.strip() == "done"
    study = optuna.load_study(study_name="shared", storage=storage.open_storage(url))
    assert [t.state.name for t in study.trials].count("COMPLETE") == 30 and len(study.trials) == 30
    assert study.metric_names == list(METRICS)
    with ResultStore(url) as store:
        assert len(store.artifact_trial_ids("shared")) == 30
        assert all(len(store.measurements(t._trial_id)) == 1 for t in study.trials)
