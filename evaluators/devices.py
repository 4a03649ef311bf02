"""Where a model is timed: this machine in a separate process, a Pi agent, or a pool of boards.

Light to import (standard library only): the search process holds TensorFlow, and no measurement
ever runs inside it.
"""

from __future__ import annotations

import abc
import fcntl
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

TOKEN_ENV = "NAS_LITE_DEVICE_TOKEN"
MAX_ANSWER_BYTES = 64 * 2 ** 20  # the agent's answer with every raw sample is well under 1 MB
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the directory that holds `evaluators/`


class DeviceError(RuntimeError):
    """A measurement could not be made; the message names the device and the reason."""


class DeviceBusy(DeviceError):
    """The device is measuring something else (HTTP 409); worth retrying later."""


class DeviceRefused(DeviceError, PermissionError):
    """The device refused the token (HTTP 401): a setting to fix, not worth retrying."""


class DeviceUnreachable(DeviceError):
    """The device did not answer (refused, reset, timed out); worth retrying later."""


class Device(abc.ABC):
    """Something that times TFLite models.

    Contract:

    - ``name``: a short label that identifies the device in results and error messages.
    - ``info() -> dict``: what the device is (board, CPU, cores, memory, runtime, temperature, ...).
    - ``measure(model_bytes, protocol) -> dict``: the statistics of
      :func:`evaluators.runtime.benchmark` for the ``.tflite`` bytes under ``protocol``
      (an :class:`evaluators.runtime.Protocol` or its dict), plus ``"device": name``. A model the
      runtime rejects raises ValueError; a device that cannot measure raises DeviceError.
    """

    name: str

    @abc.abstractmethod
    def info(self) -> dict: ...

    @abc.abstractmethod
    def measure(self, model_bytes: bytes, protocol=None) -> dict: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _protocol_dict(protocol, threads: int | None) -> dict:
    """The protocol as a dict, with the device's thread count when it has one."""
    data = {} if protocol is None else dict(protocol if isinstance(protocol, dict) else protocol.to_dict())
    if threads is not None:
        data["threads"] = threads
    return data


class LocalDevice(Device):
    """This machine. Each measurement runs in a fresh child process (``python -m evaluators.agent
    measure``), optionally pinned to ``cpus``, so that the caller's threads (TensorFlow training)
    and memory do not disturb the timing. One measurement at a time per machine (a file lock in
    the temp directory), so parallel workers never time models on top of each other.

    ``threads`` overrides the protocol's thread count; either way it is capped at the CPUs the
    child may use, since more threads than cores would time contention rather than the model.
    """

    def __init__(self, threads: int | None = None, cpus: list[int] | None = None, timeout: float = 1800):
        available = sorted(os.sched_getaffinity(0))
        if cpus is not None:
            unknown = sorted(set(cpus) - set(available))
            if unknown or not cpus:
                raise ValueError(f"cpus: {unknown or 'none given'} not usable here; choose among {available}")
        self.threads = threads
        self.cpus = sorted(cpus) if cpus is not None else None
        self.timeout = timeout
        self.name = "local" + (f"[cpus={','.join(map(str, self.cpus))}]" if self.cpus else "")
        self._info = None

    def info(self) -> dict:
        if self._info is None:
            self._info = json.loads(self._run_agent(["info"], b""))
        return self._info

    def measure(self, model_bytes: bytes, protocol=None) -> dict:
        data = _protocol_dict(protocol, self.threads)
        cores = len(self.cpus or os.sched_getaffinity(0))
        data["threads"] = min(data.get("threads", 4), cores)  # 4: the protocol's default
        arguments = ["measure", "--protocol", json.dumps(data)]
        if self.cpus:
            arguments += ["--cpus", ",".join(map(str, self.cpus))]
        with _machine_lock():
            result = json.loads(self._run_agent(arguments, bytes(model_bytes)))
        return {**result, "device": self.name}

    def _run_agent(self, arguments: list[str], stdin: bytes) -> str:
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "evaluators.agent", *arguments],
                input=stdin, capture_output=True, env=environment, timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.name}: no result after {self.timeout:.0f} s") from None
        message = _last_line(done.stderr.decode(errors="replace"))
        if done.returncode == 2:
            raise ValueError(message.removeprefix("error: "))
        if done.returncode != 0:
            raise DeviceError(f"{self.name}: the measuring process failed (exit {done.returncode}): {message}")
        return _last_line(done.stdout.decode())


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class _machine_lock:
    """An exclusive lock shared by every process on this machine (released if the holder dies)."""

    path = Path(tempfile.gettempdir()) / "nas-lite-local-device.lock"

    def __enter__(self):
        self._file = open(self.path, "a")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


class RemoteDevice(Device):
    """A board running the agent (``search agent serve``) at ``url``, reached over HTTP.

    One request per call, no retries: a busy board raises DeviceBusy, an unreachable one
    DeviceUnreachable (:class:`DevicePool` retries both).
    """

    def __init__(self, url: str, token: str | None = None, threads: int | None = None,
                 connect_timeout: float = 10, read_timeout: float = 1800):
        self.url = _check_url(url)
        self.name = self.url
        self.token = token
        self.threads = threads
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._info = None

    def info(self) -> dict:
        if self._info is None:
            self._info = self._request("GET", "/info", timeout=self.connect_timeout)  # answered at once by an agent
        return self._info

    def measure(self, model_bytes: bytes, protocol=None) -> dict:
        limit = self.info().get("max_body_bytes")
        if limit is not None and len(model_bytes) > limit:
            raise ValueError(f"model is {len(model_bytes)} bytes; the agent at {self.url} accepts at most {limit} (its --max-body-mb)")
        headers = {"X-Protocol": json.dumps(_protocol_dict(protocol, self.threads)), "Content-Type": "application/octet-stream"}
        result = self._request("POST", "/benchmark", bytes(model_bytes), headers)
        return {**result, "device": self.name}

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                 timeout: float | None = None) -> dict:
        parts = urllib.parse.urlsplit(self.url)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=self.connect_timeout)
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            connection.connect()
            connection.sock.settimeout(timeout or self.read_timeout)  # a benchmark takes a while to answer
            connection.request(method, parts.path.rstrip("/") + path, body=body, headers=headers)
            response = connection.getresponse()
            status, text = response.status, response.read(MAX_ANSWER_BYTES + 1).decode(errors="replace")
        except (OSError, http.client.HTTPException) as error:
            raise DeviceUnreachable(f"{self.url}: unreachable ({_describe(error)})") from None
        finally:
            connection.close()
        return self._answer(status, text)

    def _answer(self, status: int, text: str) -> dict:
        if len(text) > MAX_ANSWER_BYTES:  # not the agent: a flood would fill this machine's memory
            raise DeviceError(f"{self.url}: answered more than {MAX_ANSWER_BYTES // 2 ** 20} MB; is it the nas-lite agent?")
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            raise DeviceError(f"{self.url}: answered HTTP {status} with something that is not the agent's JSON") from None
        message = payload.get("error", "") if isinstance(payload, dict) else ""
        if status == 200:
            return payload
        if status == 409:
            raise DeviceBusy(f"{self.url}: busy ({message})")
        if status == 401:
            raise DeviceRefused(f"{self.url}: token refused; pass --device-token or set {TOKEN_ENV}")
        if status in (400, 413):
            raise ValueError(f"{self.url}: {message}")
        raise DeviceError(f"{self.url}: HTTP {status}: {message}")


def _describe(error: Exception) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused; is the agent running?"
    if isinstance(error, TimeoutError):
        return "timed out"
    text = getattr(error, "strerror", None) or str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--device: {url!r} is not a URL like http://raspberrypi.local:8765")
    return url.rstrip("/")


class DevicePool(Device):
    """Several identical boards: a measurement takes a free one.

    Boards in use by another thread of this process are skipped; a board that is busy (another
    client) or unreachable is tried again after ``backoff`` seconds, doubling each round, for
    ``rounds`` rounds; then DeviceError names every board and why it failed.
    """

    def __init__(self, devices: list[Device], rounds: int = 6, backoff: float = 1.0):
        if not devices:
            raise ValueError("devices: a pool needs at least one device")
        self.devices = list(devices)
        self.rounds = rounds
        self.backoff = backoff
        self.name = ",".join(device.name for device in self.devices)
        self._free = list(self.devices)
        self._changed = threading.Condition()

    def info(self) -> dict:
        """The first board's description (the boards are identical), with every board's name."""
        return {**self.devices[0].info(), "devices": [device.name for device in self.devices]}

    def measure(self, model_bytes: bytes, protocol=None) -> dict:
        failures: dict[str, str] = {}
        for round_number in range(self.rounds):
            if round_number:
                time.sleep(self.backoff * 2 ** (round_number - 1))
            tried: set[int] = set()
            while len(tried) < len(self.devices):
                device = self._take(tried)
                tried.add(id(device))
                try:
                    return device.measure(model_bytes, protocol)
                except (DeviceBusy, DeviceUnreachable) as error:
                    failures[device.name] = str(error)
                finally:
                    self._give_back(device)
        what = "; ".join(failures.values())
        raise DeviceError(f"no device could measure after {self.rounds} tries: {what}")

    def _take(self, tried: set[int]) -> Device:
        with self._changed:
            while True:
                for device in self._free:
                    if id(device) not in tried:
                        self._free.remove(device)
                        return device
                self._changed.wait()

    def _give_back(self, device: Device) -> None:
        with self._changed:
            self._free.append(device)
            self._changed.notify_all()


class PredictedDevice(Device):
    """A device that is not attached, timed by its fitted latency model
    (:class:`evaluators.latency_model.LatencyModel`, see ``search device calibrate``): ``measure``
    predicts the median and reports no spread (``predicted``: True). ``name`` is the device's, so
    that predictions and later measurements of the same board line up."""

    def __init__(self, name: str, model):
        self.name, self.model = name, model

    def info(self) -> dict:
        return {**self.model.device, "predicted_by": "latency model", "accuracy": self.model.accuracy,
                "calibration_models": self.model.calibration_models}

    def measure(self, model_bytes: bytes, protocol=None) -> dict:
        median = float(self.model.predict(bytes(model_bytes)))
        return {"median_ms": median, "p10_ms": median, "p90_ms": median, "mean_ms": median, "std_ms": 0.0, "cv": 0.0,
                "runs": 0, "predicted": True, "device": self.name, "protocol": _protocol_dict(protocol, None)}


def open_devices(urls: list[str] | None, token: str | None = None, threads: int | None = None,
                 cpus: list[int] | None = None) -> Device:
    """The device the command line asks for: no URL -> this machine (pinned to ``cpus`` if given);
    URLs -> a pool of boards. The token comes from ``token`` or the NAS_LITE_DEVICE_TOKEN
    environment variable. ``threads`` overrides the protocol's thread count.
    """
    if not urls:
        return LocalDevice(threads, cpus)
    if cpus:
        raise ValueError("--cpus: pins measurements on this machine only; drop it when measuring on --device boards")
    token = token or os.environ.get(TOKEN_ENV) or None
    return DevicePool([RemoteDevice(url, token, threads) for url in urls])
