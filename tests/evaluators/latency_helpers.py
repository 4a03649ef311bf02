"""Helpers for the latency tests: tiny real models and a real agent process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import time
import urllib.request

from tests.conftest import ROOT

TOKEN = "test-token"
QUICK = {"warmup": 2, "runs": 10, "min_seconds": 0.0, "threads": 1, "max_attempts": 1}


@functools.lru_cache(maxsize=None)
def unet_bytes(input_size: int = 32, quant: str = "float32", io_type: str = "float32") -> bytes:
    """A real converted U-Net (depth 3, base width 8)."""
    import numpy as np

    from space.convert import to_tflite
    from space.model import build
    from space.spec import QuantSpec, uniform

    model = build(uniform("standard", depth=3, base_width=8, input_size=input_size), seed=0)
    calibration = np.random.default_rng(0).random((4, input_size, input_size, 3), dtype=np.float32)
    return to_tflite(model, QuantSpec(quant, calibration_images=4, io_type=io_type), calibration)


@functools.lru_cache(maxsize=None)
def nearest_upsampling_bytes() -> bytes:
    """A model with RESIZE_NEAREST_NEIGHBOR, which XNNPACK leaves outside the delegate."""
    from space import _tf
    from space.convert import to_tflite

    keras = _tf.keras()
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same")(x)
    return to_tflite(keras.Model(inputs, outputs))


def environment() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@contextlib.contextmanager
def running_agent(*options: str, token: str | None = TOKEN, program: tuple[str, ...] = ("evaluators.agent",),
                  cwd=None, env: dict | None = None):
    """``python -m evaluators.agent serve`` on a free port; yields ``(url, process)``.

    ``program=("search", "agent")`` starts it through the command line instead.
    """
    command = [sys.executable, "-m", *program, "serve", "--host", "127.0.0.1", "--port", "0", *options]
    if token:
        command += ["--token", token]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=cwd,
                               env={**environment(), **(env or {})})
    try:
        line = process.stdout.readline()
        assert "serving on http://" in line, f"the agent did not start: {line!r}"
        url = line.split()[4]
        yield url, process
    finally:
        process.kill()
        process.wait()


def get_json(url: str, token: str | None = TOKEN) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post_model(url: str, body: bytes, protocol: dict | None = None, token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"X-Protocol": json.dumps(protocol or QUICK)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + "/benchmark", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until_busy(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if get_json(url + "/info")[1].get("busy"):
            return
        time.sleep(0.05)
    raise AssertionError("the agent never started benchmarking")
