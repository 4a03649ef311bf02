"""The Pi agent: a small HTTP service that times TFLite models on the board it runs on.

    python -m evaluators.agent serve --host 0.0.0.0 --port 8765 --token T
    python -m evaluators.agent info
    python -m evaluators.agent measure [--protocol JSON] [--cpus 0,1] < model.tflite

Imports only the standard library, numpy, LiteRT, :mod:`evaluators.litert` and
:mod:`evaluators.runtime`: on the board only Python, numpy and ``ai-edge-litert`` (or
``tflite-runtime``) are installed. Copy ``evaluators/__init__.py``, ``evaluators/litert.py``,
``evaluators/runtime.py`` and this file to run it.

Endpoints (every request carries ``Authorization: Bearer <token>``):

- ``GET /info``: board model, CPU, cores, memory, runtime, temperature, throttling, ...
- ``POST /benchmark``: the body is the ``.tflite`` model; the protocol is JSON in the
  ``X-Protocol`` header or the ``protocol`` query parameter (fields of
  :class:`evaluators.runtime.Protocol`, all optional). Answers the statistics of
  :func:`evaluators.runtime.benchmark` as JSON.

Errors are JSON ``{"error": "..."}``: 400 malformed request, bad model or one beyond the limits,
401 wrong token, 404, 408 body not received in time, 409 busy with another benchmark, 411 no
Content-Length, 413 body too large, 500.

Limits a client cannot raise (``serve`` options): ``--max-body-mb`` (64) the model's size,
``--read-seconds`` (60) the time to send it (read before the board is taken, so a slow upload holds
no other client up; at most four bodies are received at once, a fifth is 409), ``--max-tensor-mb`` (1024) the total size of the model's tensors, checked
before LiteRT allocates them, ``--max-seconds`` (600) the time one benchmark may take. The access
log leaves out query strings (a token sent as ``?token=`` is not written) and escapes control
characters.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from evaluators import litert, runtime

TOKEN_ENV = "NAS_LITE_DEVICE_TOKEN"
DEFAULT_MAX_BODY_MB = 64
DEFAULT_READ_SECONDS = 60
DEFAULT_MAX_TENSOR_MB = 1024
DEFAULT_MAX_SECONDS = 600
UPLOADS = 4  # bodies received at once: bounds the memory of uploads read before the board is taken
CPU_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76"}


# -- what the board is ---------------------------------------------------------------------------
def device_info() -> dict:
    """Board, CPU, memory, runtime and thermal state of this machine."""
    return {
        "hostname": socket.gethostname(),
        "board": _board_model(),
        "cpu": _cpu_name(),
        "cpu_features": cpu_features(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "runtime": {"name": litert.RUNTIME_NAME, "version": litert.RUNTIME_VERSION},
        "temperature_c": temperatures(),
        "throttled": throttled(),
    }


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _board_model() -> str | None:
    return _read("/proc/device-tree/model") or _read("/sys/firmware/devicetree/base/model")


def _cpu_name() -> str:
    fields = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if "model name" in fields:
        return fields["model name"]
    if "CPU part" in fields:  # ARM boards list a part number instead of a name
        return CPU_PARTS.get(fields["CPU part"], f"ARM part {fields['CPU part']}")
    return platform.processor() or platform.machine()


RANKING_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sve")
"""CPU features that change which models are fast (int8 dot products above all): a front measured
on a CPU with VNNI or ARM's dot product ranks int8 models otherwise than one without."""


def cpu_features() -> list[str]:
    """The :data:`RANKING_FEATURES` this CPU has."""
    present = cpu_flags()
    return [feature for feature in RANKING_FEATURES if feature in present]


def cpu_flags() -> set[str]:
    """Every feature flag of this CPU (/proc/cpuinfo ``flags`` on x86, ``Features`` on ARM)."""
    fields = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.split())
    return set(fields.get("flags", []) or fields.get("Features", []))


def _memory_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def temperatures() -> dict[str, float]:
    """``zone type -> degrees Celsius`` from /sys/class/thermal (empty where the board has none)."""
    readings = {}
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*")):
        value = _read(str(zone / "temp"))
        if value and value.lstrip("-").isdigit():
            readings[_read(str(zone / "type")) or zone.name] = int(value) / 1000
    return readings


def throttled() -> str | None:
    """``vcgencmd get_throttled`` (for example ``0x0``: never throttled), where the board has it."""
    if shutil.which("vcgencmd") is None:
        return None
    try:
        result = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip().partition("=")[2] or None


# -- the HTTP service ------------------------------------------------------------------------------
class AgentServer(ThreadingHTTPServer):
    """Serves /info and /benchmark; ``busy`` admits one benchmark at a time."""

    daemon_threads = True

    def __init__(self, address, token: str | None, max_body_bytes: int, read_seconds: float = DEFAULT_READ_SECONDS,
                 limits: runtime.Limits = runtime.Limits()):
        super().__init__(address, AgentHandler)
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.read_seconds = read_seconds
        self.limits = limits
        self.busy = threading.Lock()
        self.uploads = threading.BoundedSemaphore(UPLOADS)


class AgentHandler(BaseHTTPRequestHandler):
    server: AgentServer
    timeout = 120  # seconds a client may take to send its request; a stalled upload frees the agent
    server_version = "nas-lite-agent"

    def do_GET(self):
        if self._authorized():
            if self._path() == "/info":
                self._send(HTTPStatus.OK, {**device_info(), "max_body_bytes": self.server.max_body_bytes, "busy": self.server.busy.locked()})
            else:
                self._send_error(HTTPStatus.NOT_FOUND, f"no such endpoint {self._path()!r}; use GET /info or POST /benchmark")

    def do_POST(self):
        if not self._authorized():
            return
        if self._path() != "/benchmark":
            return self._send_error(HTTPStatus.NOT_FOUND, f"no such endpoint {self._path()!r}; use POST /benchmark")
        try:
            length = self._content_length()
            protocol = self._protocol()
        except ValueError as error:
            return self._send_error(HTTPStatus.BAD_REQUEST, str(error))
        if length is None:
            return self._send_error(HTTPStatus.LENGTH_REQUIRED, "send the model with a Content-Length header")
        if length > self.server.max_body_bytes:
            return self._send_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"model is {length} bytes; this agent accepts at most {self.server.max_body_bytes} (see --max-body-mb)",
            )
        if not self.server.uploads.acquire(blocking=False):
            return self._send_error(HTTPStatus.CONFLICT, f"busy receiving {UPLOADS} other models; try again later")
        try:
            self.server.limits.check(protocol)
            model = self._read_body(length)
        except ValueError as error:
            return self._send_error(HTTPStatus.BAD_REQUEST, str(error))
        except TimeoutError:
            return self._send_error(HTTPStatus.REQUEST_TIMEOUT, f"the model did not arrive within {self.server.read_seconds:g} s "
                                                                "(the agent's --read-seconds); send it again")
        finally:
            self.server.uploads.release()
        if not self.server.busy.acquire(blocking=False):
            return self._send_error(HTTPStatus.CONFLICT, "busy with another benchmark; try again later")
        try:
            status, payload = self._benchmark(model, protocol)
        finally:
            self.server.busy.release()  # before answering: a client's next request must find the board free
        if status is HTTPStatus.OK:
            self._send(status, payload)
        else:
            self._send_error(status, payload["error"])

    def _read_body(self, length: int) -> bytes:
        """The whole body, or TimeoutError once ``read_seconds`` have passed, ValueError when it ends early."""
        deadline = time.monotonic() + self.server.read_seconds
        body = bytearray()
        while len(body) < length:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.connection.settimeout(left)
            chunk = self.rfile.read1(min(length - len(body), 1 << 20))
            if not chunk:
                raise ValueError(f"body ended after {len(body)} of {length} bytes")
            body += chunk
        return bytes(body)

    def _benchmark(self, model: bytes, protocol: runtime.Protocol) -> tuple[HTTPStatus, dict]:
        """``(status, payload)`` of timing ``model``: the statistics, or ``{"error": ...}``."""
        try:
            result = runtime.benchmark(model, protocol, self.server.limits)
        except ValueError as error:
            return HTTPStatus.BAD_REQUEST, {"error": str(error)}
        except Exception as error:  # noqa: BLE001 - the agent answers and keeps serving
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"benchmark failed: {error}"}
        finally:
            del model  # nothing is kept after the response
        result["device"] = {"hostname": socket.gethostname(), "temperature_c": temperatures(), "throttled": throttled()}
        return HTTPStatus.OK, result

    def _authorized(self) -> bool:
        if self.server.token is None:
            return True
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.server.token.encode()):
            return True
        self._send_error(HTTPStatus.UNAUTHORIZED, "missing or wrong token; send 'Authorization: Bearer <token>'")
        return False

    def _path(self) -> str:
        return urllib.parse.urlsplit(self.path).path.rstrip("/") or "/"

    def _content_length(self) -> int | None:
        text = self.headers.get("Content-Length")
        if text is None:
            return None
        if not text.strip().isdigit():
            raise ValueError(f"Content-Length: not a byte count: {text!r}")
        return int(text)

    def _protocol(self) -> runtime.Protocol:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        text = self.headers.get("X-Protocol") or (query.get("protocol") or ["{}"])[0]
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"protocol: not JSON: {error}") from None
        try:
            return runtime.Protocol.from_dict(data)
        except TypeError as error:
            raise ValueError(f"protocol: {error}") from None

    def _send_error(self, status: HTTPStatus, message: str):
        self.close_connection = True  # an unread body must not be taken for the next request
        self._send(status, {"error": message})

    def _send(self, status: HTTPStatus, payload: dict):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        sys.stderr.write(f"nas-lite agent: {self.address_string()} {log_safe(format % args)}\n")


QUERY = re.compile(r"\?[^\s'\"]*")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def log_safe(text: str) -> str:
    """``text`` without query strings (they may carry a token) and with control characters escaped
    (a request line must not move the cursor or recolour the terminal that shows the log)."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", QUERY.sub("?...", text))


def make_server(host: str, port: int, token: str | None, max_body_mb: float = DEFAULT_MAX_BODY_MB,
                read_seconds: float = DEFAULT_READ_SECONDS, max_tensor_mb: float = DEFAULT_MAX_TENSOR_MB,
                max_seconds: float = DEFAULT_MAX_SECONDS) -> AgentServer:
    """A bound, not yet serving agent. Refuses a non-loopback address without a token."""
    if not token and not _is_loopback(host):
        raise ValueError(f"--token: required when listening on {host}, which other machines can reach; or use --host 127.0.0.1")
    for name, value in (("--max-body-mb", max_body_mb), ("--read-seconds", read_seconds),
                        ("--max-tensor-mb", max_tensor_mb), ("--max-seconds", max_seconds)):
        if not 0 < value < float("inf"):
            raise ValueError(f"{name}: must be a positive number, got {value}")
    if not 0 <= port <= 65535:
        raise ValueError(f"--port: {port} is not a port; give 0 to 65535 (0: any free port)")
    limits = runtime.Limits(max_tensor_bytes=int(max_tensor_mb * 2**20), max_seconds=max_seconds)
    try:
        return AgentServer((host, port), token or None, int(max_body_mb * 2**20), read_seconds, limits)
    except OSError as error:
        raise ValueError(f"--host/--port: cannot listen on {host}:{port}: {error.strerror or error}") from None


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address, by the standard library alone (no
    name is resolved). The dashboard has the same function (``studies.web.handler.is_loopback``):
    the agent may import nothing of nas-lite beyond ``evaluators``, and ``studies`` not evaluators."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str, port: int, token: str | None, max_body_mb: float = DEFAULT_MAX_BODY_MB, **limits) -> None:
    """Serve until interrupted. Prints one line with the address (the real port when ``port`` is 0).
    ``limits``: ``read_seconds``, ``max_tensor_mb``, ``max_seconds`` of :func:`make_server`."""
    server = make_server(host, port, token, max_body_mb, **limits)
    bound_host, bound_port = server.server_address[:2]
    print(f"nas-lite agent serving on http://{bound_host}:{bound_port} ({litert.RUNTIME_NAME} {litert.RUNTIME_VERSION})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# -- one measurement in this process (LocalDevice runs it as a child process) --------------------
def measure(model_bytes: bytes, protocol: runtime.Protocol, cpus: list[int] | None = None) -> dict:
    if cpus:
        os.sched_setaffinity(0, cpus)
    return runtime.benchmark(model_bytes, protocol)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluators.agent", description="nas-lite's Pi agent: times TFLite models on this board.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve /info and /benchmark over HTTP")
    _add_serve_arguments(serve_parser)
    commands.add_parser("info", help="print this board's description as JSON")
    measure_parser = commands.add_parser("measure", help="time the model read from stdin, print JSON")
    measure_parser.add_argument("--protocol", default="{}", help="JSON with fields of the protocol")
    measure_parser.add_argument("--cpus", default="", help="comma-separated CPUs to pin the measurement to")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.host, args.port, args.token, args.max_body_mb, **serve_limits(args))
        elif args.command == "info":
            print(json.dumps(device_info()))
        else:
            protocol = runtime.Protocol.from_dict(json.loads(args.protocol))
            cpus = [int(cpu) for cpu in args.cpus.split(",") if cpu.strip()]
            print(json.dumps(measure(sys.stdin.buffer.read(), protocol, cpus)))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve`` (``search agent serve`` mirrors them)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface; needs --token)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port, printed at start)")
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV), help=f"the token clients must send (default: ${TOKEN_ENV})")
    parser.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_MB, help="largest model accepted, in MiB (default %(default)s)")
    parser.add_argument("--read-seconds", type=float, default=DEFAULT_READ_SECONDS,
                        help="time a client has to send its model, in seconds (default %(default)s)")
    parser.add_argument("--max-tensor-mb", type=float, default=DEFAULT_MAX_TENSOR_MB,
                        help="largest total size of a model's tensors, in MiB (default %(default)s)")
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                        help="longest one benchmark may take, in seconds (default %(default)s)")


def serve_limits(args) -> dict:
    """The limits of ``serve`` from its parsed options, as :func:`serve` takes them."""
    return {"read_seconds": args.read_seconds, "max_tensor_mb": args.max_tensor_mb, "max_seconds": args.max_seconds}


if __name__ == "__main__":
    raise SystemExit(main())
