"""Faults while a search runs: processes killed at any moment, a full disk, NaN losses, boards that die
or stall, two searches on one study. The study must stay consistent: integrity ok, exactly the
budget, nothing left RUNNING, earlier trials intact."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import warnings

import pytest

from tests.conftest import ROOT, run_cli
from tests.reliability.helpers import QUICK, assert_consistent, assert_error, integrity, load_study

pytestmark = pytest.mark.timeout(1200)
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NAS_LITE_HEARTBEAT": "1,4"}


def _query(database, sql: str) -> bool:
    """Whether ``sql`` finds a row in the SQLite file (read-only; False while it does not exist yet)."""
    if not database.exists():
        return False
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            return connection.execute(sql).fetchone() is not None
        finally:
            connection.close()
    except sqlite3.Error:
        return False


def _running_with(key: str, without: str | None = None) -> str:
    """SQL: a RUNNING trial that has user attribute ``key`` (and not ``without``)."""
    sql = ("select 1 from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
           f"where t.state = 'RUNNING' and a.key = '{key}'")
    if without:
        sql += f" and not exists (select 1 from trial_user_attributes b where b.trial_id = t.trial_id and b.key = '{without}')"
    return sql


# -- SIGKILL at any moment ---------------------------------------------------------------------------
MOMENTS = {
    # the trial pipeline sets these attributes in this order: summary (spec sampled), training
    # (fit done), params, dice (converted and scored), latency_ms (timed, then stored)
    "training": _running_with("summary", without="training"),
    "conversion": _running_with("training", without="dice"),
    "storing": _running_with("latency_ms"),
}
ROUNDS = ["startup", "training", "conversion", "storing", "random", "training", "conversion", "random", "startup", "storing"]


@pytest.mark.slow
def test_ten_sigkills_then_a_restart_leave_exactly_the_budget(tmp_path):
    """Ten times: start, SIGKILL the whole search (coordinator, worker, measuring child) at a chosen
    or random moment: while it starts and tops the study up, trains, converts, stores; then restart.
    The final study holds exactly the budget, each killed trial counted once, and SQLite is sound."""
    database, budget, chance = tmp_path / "studies.db", 4, random.Random(7)
    command = [sys.executable, "-m", "search", "start", "--budget", str(budget), "--study", "s", *QUICK, "--epochs", "2", "--rungs", "off"]
    kills = []
    for moment in ROUNDS:
        process = subprocess.Popen(command, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        begun = time.monotonic()
        if moment in MOMENTS:
            while process.poll() is None and not _query(database, MOMENTS[moment]) and time.monotonic() - begun < 300:
                time.sleep(0.02)
        else:
            time.sleep(chance.uniform(0.5, 4.0) if moment == "startup" else chance.uniform(2.0, 20.0))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            kills.append(moment)
        process.wait()
    assert len(kills) == len(ROUNDS), kills  # every round was killed before the budget was spent

    result = run_cli("start", "--budget", budget, "--study", "s", cwd=tmp_path, env={"NAS_LITE_HEARTBEAT": "1,4"})
    assert result.returncode == 0, result.stderr[-3000:]
    kept = assert_consistent(database, "s", budget=budget)
    assert any("failed_trial" in t.system_attrs for t in load_study(database, "s").get_trials())  # retried
    connection = sqlite3.connect(database)
    artifacts = connection.execute("select trial_id, count(*), sum(length(data)), max(size) from naslite_artifacts group by trial_id").fetchall()
    connection.close()
    assert all(count == 1 and length == size for _, count, length, size in artifacts)
    stored = {trial_id for trial_id, *_ in artifacts}
    assert all(t._trial_id in stored for t in kept if t.state.name == "COMPLETE" and not t.user_attrs.get("infeasible"))


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_sigkill_in_the_middle_of_database_writes_keeps_sqlite_sound(tmp_path):
    """A process that does nothing but write (trials, attributes, 1 MB artifacts) into the study's
    database, SIGKILLed ten times at random moments: every kill lands in a write. Nothing is torn:
    integrity ok, every artifact whole (its SHA-256 matches), every trial complete or still RUNNING."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    writer = (
        "import sys, os, optuna\n"
        "from studies.storage import open_storage\n"
        "from studies.store import ResultStore\n"
        "optuna.logging.set_verbosity(optuna.logging.ERROR)\n"
        "study = optuna.create_study(study_name='w', storage=open_storage(sys.argv[1]), directions=['maximize'], load_if_exists=True)\n"
        "store = ResultStore(sys.argv[1])\n"
        "print('writing', flush=True)\n"
        "while True:\n"
        "    trial = study.ask()\n"
        "    for key in range(5):\n"
        "        trial.set_user_attr(f'k{key}', 'x' * 2000)\n"
        "    store.save_artifact(trial._trial_id, 'w', trial.number, os.urandom(1 << 20))\n"
        "    study.tell(trial, 0.5)\n"
    )
    chance = random.Random(3)
    for _ in range(10):
        process = subprocess.Popen([sys.executable, "-c", writer, url], env={**ENV, "NAS_LITE_HEARTBEAT": "1,600"},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "writing", process.stderr.read()
        time.sleep(chance.uniform(0.05, 1.5))
        process.kill()
        process.communicate()
    path = tmp_path / "studies.db"
    assert integrity(path) == "ok"
    connection = sqlite3.connect(path)
    artifacts = connection.execute("select trial_id, sha256, data from naslite_artifacts").fetchall()
    connection.close()
    import hashlib

    assert artifacts and all(hashlib.sha256(data).hexdigest() == digest for _, digest, data in artifacts)
    states = {t.state.name for t in load_study(path, "w").get_trials()}
    assert states <= {"COMPLETE", "RUNNING"}


# -- a full disk -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_full_disk_when_the_artifact_is_written(tmp_path):
    """The database lives on a real 24 MB tmpfs (in a private mount namespace) that fills up while a
    trial trains, leaving too little room for its 1.9 MB artifact. The trial fails with a reason
    that says so; the study stays sound; once space is freed the same command continues it."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to mount a small filesystem of its own")
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    big = ["--data-limit", "40", "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--depths", "3",
           "--widths", "16", "--block-kinds", "standard", "--threads", "1", "--quant-modes", "float32", "--no-presets"]
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "tests.reliability.full_disk",
         disk, out, str(768 * 1024), "--", *big],
        capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.splitlines()[-1])
    assert runs["first"]["status"] == 0 and runs["first"]["stderr"] == "", runs["first"]
    assert "FAILED: OSError: the disk that holds" in runs["first"]["stdout"]
    (failed,) = assert_consistent(out / "first" / "studies.db", "full", budget=1)
    assert failed.state.name == "FAIL" and "is full, nothing of this write was kept" in failed.user_attrs["error"]
    assert "store" in failed.user_attrs["seconds"]  # it was the artifact's write that failed
    assert runs["second"]["status"] == 0, runs["second"]
    first, second = assert_consistent(out / "second" / "studies.db", "full", budget=2)
    assert first.user_attrs == failed.user_attrs and first.state.name == "FAIL"  # the earlier trial is intact
    assert second.state.name == "COMPLETE"


# -- one worker process, as the coordinator starts it ---------------------------------------------------
def worker_job(tmp_path, study: str, budget: int, nan_pixel: bool = False):
    """A study topped up with ``budget`` WAITING trials and the job file of ``python -m search.worker``,
    made by the coordinator's own functions; the training images get a NaN pixel if asked."""
    import numpy as np
    import optuna

    from evaluators.data import Dataset, load_dataset
    from search.config import SearchConfig
    from search.loop import _create_study, _save_data, _top_up
    from studies.storage import open_storage

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = SearchConfig(budget=budget, study=study, storage=url, image_size=32, epochs=1, batch_size=8, depths=(3,),
                          widths=(4,), block_kinds=("depthwise",), quant_modes=("float32",), threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for metric names
        _create_study(config, open_storage(url))
    _top_up(optuna.load_study(study_name=study, storage=open_storage(url)), config)  # a writer: load_study reads only
    clean = load_dataset("synthetic", 32, synthetic_count=20)
    images = clean.train_images.copy()
    if nan_pixel:
        images[0, 3, 3, 0] = np.nan
    data = _save_data(Dataset(images, clean.train_masks, clean.val_images, clean.val_masks, study), tmp_path)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"config": config.to_dict(), "data": str(data), "index": 0, "deadline": None}))
    return [sys.executable, "-m", "search.worker", str(job)]


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_a_trial_failed_as_stale_while_its_worker_stalled_is_dropped_and_the_worker_goes_on(tmp_path):
    """A worker stalls (SIGSTOP) mid-trial past the grace period; another process fails its trial as
    stale and queues a retry, as every worker does. When the worker resumes, its next write finds the
    trial finished: it drops that run, runs the retry and the rest, and exits cleanly."""
    import optuna

    from studies.storage import open_storage

    database = tmp_path / "studies.db"
    worker = subprocess.Popen(worker_job(tmp_path, "stall", budget=1), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Stopped before training ends, so that several writes are still to come: stopped later, under
    # load, the worker could finish its tiny trial while _stop_outside_a_write waits for a free lock.
    while worker.poll() is None and not _query(database, MOMENTS["training"]):
        time.sleep(0.02)
    _stop_outside_a_write(worker, database)
    try:
        assert _query(database, MOMENTS["training"]), "the worker was not stopped mid-training"
        time.sleep(5)  # > the 4 s grace period of NAS_LITE_HEARTBEAT=1,4
        url = f"sqlite:///{database}"
        study = optuna.load_study(study_name="stall", storage=open_storage(url, heartbeat_interval=1, grace_period=4))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning
            optuna.storages.fail_stale_trials(study)
    finally:
        worker.send_signal(signal.SIGCONT)
    _, err = worker.communicate(timeout=600)
    assert worker.returncode == 0, err[-3000:]
    assert "UpdateFinishedTrialError" in err  # the dropped run, in the worker's log
    (retry,) = assert_consistent(database, "stall", budget=1)
    assert load_study(database, "stall").get_trials()[0].state.name == "FAIL"
    assert retry.state.name == "COMPLETE" and retry.system_attrs["failed_trial"] == 0


def test_a_trial_failed_as_stale_between_its_last_write_and_its_tell_is_dropped(tmp_path):
    """A stall can also fall after the trial's last write: its tell then raises the error the worker
    drops a run on (UpdateFinishedTrialError), not Optuna's ValueError, which would end the worker.
    A ValueError of a trial still running (values Optuna refuses) is not hidden."""
    import optuna

    from search.worker import _tell

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="tell", storage=url, directions=["maximize", "minimize"])
    stalled, running = study.ask(), study.ask()
    other_process = optuna.load_study(study_name="tell", storage=url)
    other_process._storage.set_trial_state_values(stalled._trial_id, optuna.trial.TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError, match="finished by another process"):
        _tell(study, stalled, [0.5, 1.0], optuna.trial.TrialState.COMPLETE)
    with pytest.raises(ValueError, match="number of the values"):
        _tell(study, running, [0.5], optuna.trial.TrialState.COMPLETE)
    assert [trial.state.name for trial in study.get_trials()] == ["FAIL", "RUNNING"]


def _stop_outside_a_write(process, database) -> None:
    """SIGSTOP ``process`` at a moment it holds no SQLite write lock (else every other writer would wait)."""
    while True:
        process.send_signal(signal.SIGSTOP)
        time.sleep(0.05)
        try:
            connection = sqlite3.connect(database, timeout=0.2)
            try:
                connection.execute("begin immediate")
                connection.rollback()
                return
            finally:
                connection.close()
        except sqlite3.OperationalError:
            process.send_signal(signal.SIGCONT)
            time.sleep(0.1)


# -- NaN loss ----------------------------------------------------------------------------------------
def test_nan_loss_fails_the_trial_with_its_reason(tmp_path):
    """A real worker process (``python -m search.worker``) gets training images with a NaN pixel (the
    folder loader refuses such files, see test_inputs): the trial is FAIL with the reason and the fix
    before any training step, and the worker exits cleanly. Issue 17.13: it used to rely on the loss
    becoming NaN, which on a CPU with AVX-512 it did not (a max swallowed the NaN): a complete trial."""
    command = worker_job(tmp_path, "nan", budget=1, nan_pixel=True)
    worker = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert worker.returncode == 0, worker.stderr[-3000:]
    (trial,) = assert_consistent(tmp_path / "studies.db", "nan", budget=1)
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["error"] == ("TrainingError: the training images hold NaN or infinite values "
                                         "(1 image(s), the first at index 0); replace or remove those images")


# -- boards that die or stall ------------------------------------------------------------------------
@pytest.fixture
def silent_board():
    """``http://127.0.0.1:PORT`` of a server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_board_that_never_answers_times_out_with_its_name(silent_board):
    from evaluators.devices import DeviceError, DevicePool, RemoteDevice

    board = RemoteDevice(silent_board, "t", connect_timeout=1, read_timeout=1)
    began = time.monotonic()
    with pytest.raises(DeviceError, match=rf"no device could measure after 2 tries: {silent_board}: unreachable \(timed out\)"):
        DevicePool([board], rounds=2, backoff=0.1).measure(b"model", {"runs": 1})
    assert time.monotonic() - began < 10


def test_a_board_that_never_answers_stops_the_search_at_start(tmp_path, silent_board):
    """The start-up check asks for /info with the connect timeout (10 s), not the benchmark's 30 minutes."""
    began = time.monotonic()
    result = run_cli("start", "--budget", "1", "--device", silent_board, "--device-token", "t", *QUICK, cwd=tmp_path)
    assert_error(result, 1, f"{silent_board}: unreachable (timed out)")
    assert time.monotonic() - began < 60


@pytest.fixture
def flooding_board(monkeypatch):
    """A server on loopback that answers every request with an endless body, as no agent does."""
    import evaluators.devices

    monkeypatch.setattr(evaluators.devices, "MAX_ANSWER_BYTES", 2 ** 20)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def flood():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
        with contextlib.suppress(OSError):
            while not stop.is_set():
                connection.sendall(b" " * 65536)
        connection.close()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def test_a_board_that_floods_its_answer_is_refused_without_reading_it_all(flooding_board):
    from evaluators.devices import DeviceError, RemoteDevice

    with pytest.raises(DeviceError, match=rf"{flooding_board}: answered more than 1 MB; is it the nas-lite agent\?"):
        RemoteDevice(flooding_board, "t", connect_timeout=2, read_timeout=5).measure(b"model", {"runs": 1})


def test_a_slow_benchmark_times_out_and_the_agent_serves_on():
    from evaluators.devices import DeviceError, DevicePool, RemoteDevice
    from tests.evaluators.latency_helpers import QUICK as PROTOCOL, TOKEN, get_json, running_agent, unet_bytes

    with running_agent() as (url, process):
        slow = RemoteDevice(url, TOKEN, read_timeout=1)
        with pytest.raises(DeviceError, match=rf"{url}: unreachable \(timed out\)"):
            DevicePool([slow], rounds=1).measure(unet_bytes(), {**PROTOCOL, "min_seconds": 4})
        deadline = time.monotonic() + 30
        while get_json(url + "/info")[1]["busy"] and time.monotonic() < deadline:  # the abandoned benchmark ends
            time.sleep(0.2)
        assert RemoteDevice(url, TOKEN).measure(unet_bytes(), PROTOCOL)["median_ms"] > 0
        assert process.poll() is None


@pytest.mark.slow
def test_agent_killed_mid_search_fails_that_trial_naming_the_board(tmp_path):
    """A search measures on a real agent; the agent dies while it times trial 1. Trial 0 stays as it
    was, trial 1 is FAIL with a reason that names the board, the search ends normally."""
    from tests.evaluators.latency_helpers import TOKEN, get_json, running_agent

    with running_agent() as (url, agent):
        process = subprocess.Popen(
            [sys.executable, "-m", "search", "start", "--budget", "2", "--study", "pi", "--device", url,
             "--device-token", TOKEN, *QUICK], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        database, busy_periods, was_busy = tmp_path / "studies.db", 0, False
        while process.poll() is None and busy_periods < 2:
            busy = get_json(url + "/info")[1]["busy"]
            busy_periods += busy and not was_busy
            was_busy = busy
            time.sleep(0.02)
        assert _query(database, "select 1 from trials where number = 0 and state = 'COMPLETE'")
        agent.kill()
        out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    first, second = assert_consistent(database, "pi", budget=2)
    assert first.state.name == "COMPLETE" and first.user_attrs["device"] == url
    assert second.state.name == "FAIL" and f"{url}: unreachable" in second.user_attrs["error"]
    assert "FAILED: DeviceError: no device could measure" in out


# -- two searches on one study ------------------------------------------------------------------------
@pytest.mark.slow
def test_two_starts_on_one_study_at_once_share_the_budget(tmp_path):
    command = [sys.executable, "-m", "search", "start", "--budget", "2", "--study", "s", *QUICK]
    processes = [subprocess.Popen(command, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=900) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
        assert err == "", err[-3000:]
    trials = assert_consistent(tmp_path / "studies.db", "s", budget=2)
    assert len(load_study(tmp_path / "studies.db", "s").get_trials()) == 2
    assert all(t.state.name == "COMPLETE" for t in trials), [t.user_attrs.get("error") for t in trials]
    specs = [t.user_attrs["summary"] for t in trials]
    assert len(set(specs)) == 2, specs  # the two searches' workers draw per trial, not the same sequence twice
