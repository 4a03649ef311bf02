"""The Pi agent as a real process on 127.0.0.1, reached over real HTTP."""

import http.client
import json
import subprocess
import sys
import threading
import urllib.parse

import pytest

from evaluators.devices import DeviceError, DevicePool, RemoteDevice
from tests.evaluators.latency_helpers import (
    QUICK, TOKEN, environment, get_json, post_model, running_agent, unet_bytes, wait_until_busy,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def agent():
    with running_agent("--max-body-mb", "1") as (url, _):
        yield url


def test_info_describes_the_machine(agent):
    status, info = get_json(agent + "/info")
    assert status == 200
    for key in ("board", "cpu", "cores", "memory_bytes", "runtime", "temperature_c", "throttled", "python", "hostname"):
        assert key in info
    assert info["max_body_bytes"] == 1024 * 1024 and info["busy"] is False
    flags = open("/proc/cpuinfo").read()
    assert info["cpu_features"] == [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sve")
                                    if f" {f}" in flags.replace("\n", " ")]


def test_benchmark_through_the_agent(agent):
    result = RemoteDevice(agent, TOKEN).measure(unet_bytes(), QUICK)
    assert result["device"] == agent
    assert result["runs"] >= 10 and result["median_ms"] > 0
    assert result["delegate"]["inside"]["CONV_2D"] == 15
    assert result["protocol"]["runs"] == 10


@pytest.mark.parametrize("token", ["wrong", None])
def test_wrong_or_missing_token_is_401(agent, token):
    assert get_json(agent + "/info", token=token)[0] == 401
    assert post_model(agent, unet_bytes(), token=token)[0] == 401


def test_oversized_body_is_413_before_it_is_read(agent):
    parts = urllib.parse.urlsplit(agent)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.putrequest("POST", "/benchmark")
    connection.putheader("Authorization", f"Bearer {TOKEN}")
    connection.putheader("Content-Length", str(2 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert "at most 1048576" in json.loads(response.read())["error"]
    connection.close()
    with pytest.raises(ValueError, match="accepts at most"):
        RemoteDevice(agent, TOKEN).measure(b"\0" * (2 * 1024 * 1024), QUICK)


def test_garbage_is_400_and_the_agent_keeps_serving(agent):
    status, answer = post_model(agent, b"garbage bytes, not a flatbuffer")
    assert status == 400 and "Flatbuffer" in answer["error"]
    assert post_model(agent, unet_bytes())[0] == 200


@pytest.mark.parametrize("protocol", ["{not json", '{"runz": 3}', '{"runs": -1}', "[1, 2]"])
def test_malformed_protocol_is_400(agent, protocol):
    parts = urllib.parse.urlsplit(agent)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("POST", "/benchmark", body=unet_bytes(),
                       headers={"Authorization": f"Bearer {TOKEN}", "X-Protocol": protocol})
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["error"].startswith("protocol")


def test_unknown_endpoint_is_404(agent):
    assert get_json(agent + "/nothing")[0] == 404


def test_two_benchmarks_at_once_one_gets_409(agent):
    slow = {**QUICK, "runs": 1, "min_seconds": 2.5}
    statuses = []

    def post():
        statuses.append(post_model(agent, unet_bytes(), slow)[0])

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]


def test_agent_killed_mid_benchmark_names_the_device():
    with running_agent() as (url, process):
        pool = DevicePool([RemoteDevice(url, TOKEN)], rounds=2, backoff=0.1)
        errors = []

        def measure():
            try:
                pool.measure(unet_bytes(), {**QUICK, "min_seconds": 30})
            except DeviceError as error:
                errors.append(str(error))

        thread = threading.Thread(target=measure)
        thread.start()
        wait_until_busy(url)
        process.kill()
        thread.join(timeout=60)
    assert len(errors) == 1
    assert url in errors[0] and "unreachable" in errors[0]


def test_refuses_to_listen_on_other_machines_without_a_token():
    done = subprocess.run(
        [sys.executable, "-m", "evaluators.agent", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, env=environment(), timeout=60,
    )
    assert done.returncode == 2
    assert "--token: required" in done.stderr


NO_HEAVY_IMPORTS = """
import sys
for name in ("tensorflow", "tf_keras", "keras", "optuna", "sqlalchemy", "space", "studies", "search"):
    sys.modules[name] = None  # importing any of these now raises ImportError
import evaluators.agent
from evaluators.runtime import Protocol, benchmark
result = benchmark(open(sys.argv[1], "rb").read(), Protocol(warmup=1, runs=5, min_seconds=0, threads=1))
print(result["median_ms"], result["delegate"]["inside"]["CONV_2D"])
"""


def test_agent_runs_from_the_files_the_readme_copies_without_tensorflow_optuna_or_sqlalchemy(tmp_path):
    """What a Pi gets: only the files of the README's ``scp`` line, and none of the heavy packages."""
    import os
    import re
    import shutil

    from tests.conftest import ROOT

    copied = re.search(r"^scp (evaluators/\S+(?: evaluators/\S+)*) pi@", (ROOT / "README.md").read_text(), re.M).group(1).split()
    board = tmp_path / "board"
    for name in copied:
        (board / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, board / name)
    model = tmp_path / "model.tflite"
    model.write_bytes(unet_bytes())
    done = subprocess.run([sys.executable, "-c", NO_HEAVY_IMPORTS, str(model)], cwd=board,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(board)}, timeout=120)
    assert done.returncode == 0, done.stderr
    median, convolutions = done.stdout.split()
    assert float(median) > 0 and convolutions == "15"


def test_agent_writes_nothing(tmp_path):
    workdir, tempdir = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    tempdir.mkdir()
    with running_agent(cwd=workdir, env={"TMPDIR": str(tempdir)}) as (url, _):
        assert post_model(url, unet_bytes())[0] == 200
        assert post_model(url, b"garbage")[0] == 400
        assert list(workdir.iterdir()) == [] and list(tempdir.iterdir()) == []


def test_the_board_is_free_as_soon_as_an_answer_arrives(agent):
    """The lock is released before the answer is sent: a client's next request never finds the
    board busy with its own finished one (it used to, now and then, on a loaded machine)."""
    model = unet_bytes()
    statuses = [post_model(agent, b"garbage" if i % 2 else model)[0] for i in range(12)]
    assert statuses == [200, 400] * 6
