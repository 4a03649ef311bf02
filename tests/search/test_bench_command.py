"""``search bench`` and ``search agent`` through the real command line."""

import json
from pathlib import Path

import pytest

from tests.evaluators.latency_helpers import TOKEN, get_json, post_model, running_agent, unet_bytes

pytestmark = pytest.mark.timeout(300)
QUICK_OPTIONS = ("--warmup", "1", "--runs", "5", "--min-seconds", "0", "--threads", "1")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "unet.tflite"
    path.write_bytes(unet_bytes())
    return path


def test_bench_prints_statistics(cli, model_file):
    done = cli("bench", model_file, *QUICK_OPTIONS)
    assert done.returncode == 0, done.stderr
    assert "unet.tflite on local" in done.stdout
    for word in ("median", "p10", "p90", "cv", "XNNPACK", "CONV_2D x15", "outside   none", "peak activations"):
        assert word in done.stdout
    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    assert f"measured on local: {cpu}" in done.stdout and "int8-relevant features" in done.stdout


def test_bench_warns_when_xnnpack_refuses_the_model(cli):
    model = Path(__file__).parents[1] / "evaluators" / "data" / "xnnpack_refuses_int8.tflite"
    done = cli("bench", model, *QUICK_OPTIONS)
    assert done.returncode == 0, done.stderr
    assert "XNNPACK   0 partition(s)" in done.stdout
    assert "warning: XNNPACK refused this model" in done.stdout and "timed on LiteRT's own kernels" in done.stdout


def test_bench_json_on_an_agent(cli, model_file):
    with running_agent() as (url, _):
        done = cli("bench", model_file, "--device", url, "--device-token", TOKEN, "--json", *QUICK_OPTIONS)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["device"] == url and result["runs"] == 5 and result["threads"] == 1
    assert "cpu_features" in result["device_info"]


def test_bench_errors_are_one_line(cli, model_file, tmp_path):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"garbage")
    for arguments, message in [
        ((tmp_path / "missing.tflite",), "no such file"),
        ((garbage,), "LiteRT cannot load it"),
        ((model_file, "--device", "pi.local"), "is not a URL"),
        ((model_file, "--runs", "0"), "must be at least 1"),
    ]:
        done = cli("bench", *arguments)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_agent_serve_needs_a_token_off_loopback(cli):
    done = cli("agent", "serve", "--host", "0.0.0.0", "--port", "0", env={"NAS_LITE_DEVICE_TOKEN": ""})
    assert done.returncode == 2
    assert "--token: required" in done.stderr


def test_search_agent_serve_answers(model_file):
    with running_agent(program=("search", "agent")) as (url, _):
        status, info = get_json(url + "/info")
        assert status == 200 and info["runtime"]["name"]
        assert post_model(url, model_file.read_bytes())[0] == 200
