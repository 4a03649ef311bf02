"""The Pi agent against hostile or broken clients, as a real process on 127.0.0.1.

Already covered in tests/evaluators/test_agent.py: 401 for a wrong or missing token, 413 before an
oversized body is read, 400 for garbage models and malformed protocols, 404, 409, refusing 0.0.0.0
without a token. Here: the default address, how the token is compared, framing tricks, malformed
HTTP, path traversal, nothing written or kept, and a bounded fuzz run that must never kill it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.evaluators.latency_helpers import QUICK, TOKEN, environment, get_json, post_model, unet_bytes

pytestmark = pytest.mark.timeout(900)


@contextlib.contextmanager
def agent_process(folder: Path, *options: str, token: str | None = TOKEN, program=("evaluators.agent",), log=None):
    """The agent serving on a free port (no --host: its default), with its own empty working folder
    and TMPDIR (its access log to the file ``log``, if given); yields ``(url, process, workdir, tempdir)``."""
    workdir, tempdir = folder / "cwd", folder / "tmp"
    workdir.mkdir(parents=True)
    tempdir.mkdir()
    command = [sys.executable, "-m", *program, "serve", "--port", "0", *options, *(["--token", token] if token else [])]
    process = subprocess.Popen(command, cwd=workdir, env={**environment(), "TMPDIR": str(tempdir)},
                               stdout=subprocess.PIPE, stderr=open(log, "w") if log else subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        assert "serving on http://" in line, f"the agent did not start: {line!r}"
        yield line.split()[4], process, workdir, tempdir
    finally:
        process.kill()
        process.wait()


def raw(url: str, request: bytes, timeout: float = 30) -> bytes:
    """Send ``request`` as it is, close the sending side, return everything the agent answers."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as connection:
        try:
            connection.sendall(request)
            connection.shutdown(socket.SHUT_WR)
        except OSError:  # the agent may answer and close before it read everything (413, 431)
            pass
        return read_to_close(connection)


def read_to_close(connection: socket.socket) -> bytes:
    """Everything the agent sends until it closes: one ``recv`` may hold only the headers."""
    answer = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int | None:
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[0].startswith(b"HTTP/") and first[1].isdigit() else None


def assert_serving(url: str, process) -> None:
    assert process.poll() is None, "the agent died"
    assert get_json(url + "/info")[0] == 200


def assert_nothing_kept(process, workdir: Path, tempdir: Path) -> None:
    """No file in the agent's working folder or TMPDIR, and no file (deleted or not) held open."""
    assert list(workdir.iterdir()) == [] and list(tempdir.iterdir()) == []
    opened = [os.readlink(fd) for fd in Path(f"/proc/{process.pid}/fd").iterdir()]
    assert not [target for target in opened if target.startswith("/") and not target.startswith(("/dev/", "/proc/"))
                and not target.endswith((".so", ".pyc"))], opened


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    with agent_process(tmp_path_factory.mktemp("agent"), "--max-body-mb", "1") as served:
        yield served


# -- where it listens --------------------------------------------------------------------------------
@pytest.mark.parametrize("program", [("evaluators.agent",), ("search", "agent")])
def test_binds_loopback_unless_told_otherwise(tmp_path, program):
    with agent_process(tmp_path, program=program) as (url, process, _, _):
        assert url.startswith("http://127.0.0.1:")
        assert_serving(url, process)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "raspberrypi.local"])
@pytest.mark.parametrize("token", [None, ""])
def test_refuses_other_addresses_without_a_token(host, token):
    from evaluators.agent import make_server

    with pytest.raises(ValueError, match=f"--token: required when listening on {host}"):
        make_server(host, 0, token)


# -- the token ---------------------------------------------------------------------------------------
def test_token_is_compared_in_constant_time(monkeypatch):
    """Every bearer token, whatever its length or characters, is compared with the real one by
    ``hmac.compare_digest`` (no ``==``, no early exit on a shorter or longer token, which would
    leak its length), and nothing but the exact token passes."""
    import hmac

    from evaluators import agent as module

    compared, original = [], hmac.compare_digest

    def spy(given, expected):
        compared.append((given, expected))
        return original(given, expected)

    monkeypatch.setattr(module.hmac, "compare_digest", spy)
    server = module.make_server("127.0.0.1", 0, "s3cret-token")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    bearer = ["s3cret-token", "s3cret", "s3cret-token-and-more", "S3CRET-TOKEN", "", "s\xe9cret-token"]
    headers = [f"Bearer {bearer[0]}", f"bearer {bearer[0]}", *(f"Bearer {token}" for token in bearer[1:]),
               "Basic s3cret-token", "s3cret-token"]
    try:
        answers = {}
        for header in headers:
            answers[header] = status_of(raw(url, f"GET /info HTTP/1.1\r\nHost: x\r\nAuthorization: {header}\r\n"
                                            "Connection: close\r\n\r\n".encode("latin-1")))
        answers[None] = status_of(raw(url, b"GET /info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    finally:
        server.shutdown()
        server.server_close()
    assert answers == {**{key: 401 for key in answers}, "Bearer s3cret-token": 200, "bearer s3cret-token": 200}
    sent = [bearer[0], bearer[0], *bearer[1:]]  # the bearer tokens, in the order they were sent
    assert compared == [(token.encode(), b"s3cret-token") for token in sent]


# -- framing and malformed HTTP ---------------------------------------------------------------------
AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()


@pytest.mark.parametrize("request_bytes, status", [
    (b"POST /benchmark HTTP/1.1\r\n" + AUTH + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411),
    (b"POST /benchmark HTTP/1.1\r\n" + AUTH + b"Content-Length: -5\r\n\r\n", 400),
    (b"POST /benchmark HTTP/1.1\r\n" + AUTH + b"Content-Length: 12abc\r\n\r\n", 400),
    (b"POST /benchmark HTTP/1.1\r\n" + AUTH + b"Content-Length: 99999999999999999999999\r\n\r\n", 413),
    (b"POST /benchmark HTTP/1.1\r\n" + AUTH + b"Content-Length: 1000\r\n\r\nonly a few bytes", 400),
    (b"POST /benchmark HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000, 401),  # no token: never read
    (b"\r\n\r\n", None),  # an empty request line: closed without an answer
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET\r\n\r\n", 400),
    (b"GET /info\r\n\r\n", b"missing or wrong token"),  # HTTP/0.9: no headers, so no token
    (b"GET /info HTTP/9.9\r\n" + AUTH + b"\r\n", 505),
    (b"GET /info HTTP/1.1\r\nno colon in this header\r\n" + AUTH + b"\r\n", 401),  # headers end at the bad line
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /info HTTP/1.1\r\nX-Long: " + b"b" * 70000 + b"\r\n\r\n", 431),
    (b"GET /info HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    (bytes(range(256)) * 4, 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), 400),  # a TLS ClientHello
])
def test_malformed_requests_get_an_answer_and_the_agent_serves_on(agent, request_bytes, status):
    url, process, _, _ = agent
    answer = raw(url, request_bytes)
    if status is None:
        assert answer == b""
    elif isinstance(status, bytes):
        assert status in answer, answer[:300]
    else:  # http.server answers a request line it cannot parse the HTTP/0.9 way: no status line, the code in the body
        assert status_of(answer) == status or (status_of(answer) is None and f"Error code: {status}".encode() in answer), answer[:300]
    assert_serving(url, process)


@pytest.mark.parametrize("method, target", [
    ("GET", "/../../../../etc/passwd"), ("GET", "/info/../../../../etc/passwd"), ("GET", "/%2e%2e/%2e%2e/etc/passwd"),
    ("GET", "//etc/passwd"), ("GET", "/static/../../etc/passwd"), ("POST", "/benchmark/../../../tmp/model.tflite"),
    ("GET", "/info?file=../../../../etc/passwd"), ("GET", "/info%00/../../etc/passwd"),
])
def test_paths_cannot_reach_files(agent, method, target):
    url, process, _, _ = agent
    answer = raw(url, f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n".encode() + AUTH + b"\r\n")
    assert status_of(answer) == (200 if target.startswith("/info?") else 404)
    assert b"root:" not in answer  # /etc/passwd is never read
    assert_serving(url, process)


@pytest.mark.parametrize("protocol", [
    {"model": "../../../etc/passwd"}, {"output": "/tmp/kept.tflite"}, {"threads": "../../x"}, {"runs": [1, 2]},
    {"min_seconds": 1e9}, {"warmup": -1}, {"threads": True},
])
def test_protocol_fields_cannot_name_files_or_run_forever(agent, protocol):
    url, process, workdir, tempdir = agent
    status, answer = post_model(url, unet_bytes(), protocol)
    assert status == 400 and answer["error"].startswith("protocol")
    assert_serving(url, process)


def test_no_model_is_kept_after_the_response(tmp_path):
    with agent_process(tmp_path) as (url, process, workdir, tempdir):
        assert post_model(url, unet_bytes())[0] == 200
        assert post_model(url, unet_bytes()[:4000])[0] == 400  # a truncated model
        assert_nothing_kept(process, workdir, tempdir)


# -- fuzz ----------------------------------------------------------------------------------------------
MODEL = None


def _model() -> bytes:
    global MODEL
    if MODEL is None:
        MODEL = unet_bytes()
    return MODEL


@st.composite
def requests(draw) -> bytes:
    """One HTTP request: a method, a path, headers and a body, each sane, hostile or broken."""
    method = draw(st.sampled_from(["GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "BREW"])
                  | st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12))
    path = draw(st.sampled_from(["/info", "/benchmark", "/benchmark?protocol=%7B%7D", "/", "/../etc/passwd", "/benchmark/"])
                | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40).map(lambda t: "/" + t))
    model = _model()
    body = draw(st.one_of(
        st.binary(max_size=2048),
        st.just(model),
        st.integers(0, len(model)).map(lambda n: model[:n]),
        st.lists(st.tuples(st.integers(0, len(model) - 1), st.integers(0, 255)), min_size=1, max_size=20).map(
            lambda flips: bytes(_flip(model, flips))),
    ))
    headers = []
    auth = draw(st.sampled_from(["right", "right", "right", "wrong", "none", "odd"]))
    if auth != "none":
        token = {"right": TOKEN, "wrong": "not-the-token", "odd": "\x00\xff" * 50}[auth]
        headers.append(f"Authorization: Bearer {token}")
    length = draw(st.sampled_from(["right", "right", "right", "none", "more", "less", "junk"]))
    if length != "none":
        headers.append("Content-Length: " + {"right": str(len(body)), "more": str(len(body) + 100),
                                             "less": str(max(len(body) - 10, 0)), "junk": "12x"}[length])
    protocol = draw(st.one_of(
        st.fixed_dictionaries({"min_seconds": st.sampled_from([0, 0.01, -1, "x"])}, optional={
            "warmup": st.integers(-2, 2), "runs": st.integers(-1, 5), "threads": st.integers(0, 2), "max_cv": st.floats(allow_nan=True), "max_attempts": st.integers(0, 2),
            "unknown": st.text(max_size=5)}).map(json.dumps),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    ))
    headers.append(f"X-Protocol: {protocol}")
    headers += draw(st.lists(st.sampled_from(["Transfer-Encoding: chunked", "Expect: 100-continue", "Connection: keep-alive",
                                              "Host: evil.example", "X-Forwarded-For: 10.0.0.1"]), max_size=2))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{header}\r\n" for header in headers) + "\r\n"
    return head.encode("latin-1", "replace") + body


def _flip(model: bytes, flips) -> bytearray:
    mutated = bytearray(model)
    for offset, value in flips:
        mutated[offset] = value
    return mutated


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    with agent_process(tmp_path_factory.mktemp("fuzz"), "--max-body-mb", "1") as served:
        yield served


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(request=requests())
def test_fuzz_never_kills_the_agent(fuzzed, request):
    url, process, _, _ = fuzzed
    answer = raw(url, request, timeout=60)
    assert process.poll() is None, f"the agent died on {request[:300]!r}"
    assert status_of(answer) in (None, 100, 200, 400, 401, 404, 405, 409, 411, 413, 414, 431, 500, 501, 505), answer[:300]


def test_after_the_fuzz_it_measures_and_keeps_nothing(fuzzed):
    url, process, workdir, tempdir = fuzzed
    assert_serving(url, process)
    assert post_model(url, _model(), QUICK)[0] == 200
    assert_nothing_kept(process, workdir, tempdir)


# -- issue 17: what one client may cost the board ------------------------------------------------------
def _open_upload(url: str, declared: int, sent: bytes) -> socket.socket:
    parts = urllib.parse.urlsplit(url)
    connection = socket.create_connection((parts.hostname, parts.port), timeout=60)
    connection.sendall(b"POST /benchmark HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: %d\r\n\r\n" % declared + sent)
    return connection


def test_a_stalled_upload_does_not_hold_the_board(tmp_path):
    """Issue 17.5: a client that declares 500,000 bytes and sends 1,000 used to take the lock first and
    hold the board for the handler's 120 s: now the body is read before the lock, within --read-seconds."""
    with agent_process(tmp_path, "--read-seconds", "4") as (url, process, _, _):
        stalled = _open_upload(url, 500_000, b"x" * 1000)
        try:
            time.sleep(0.5)
            assert post_model(url, unet_bytes())[0] == 200  # it used to be 409, busy
            started = time.monotonic()
            answer = read_to_close(stalled)
            assert status_of(answer) == 408 and b"--read-seconds" in answer, answer[:300]
            assert time.monotonic() - started < 10
        finally:
            stalled.close()
        assert_serving(url, process)


def test_bodies_received_at_once_are_bounded(tmp_path):
    """Read before the lock, every stalled upload would hold up to --max-body-mb of memory: four are
    received at once, a fifth is 409 at once, and the board is free again once they time out."""
    with agent_process(tmp_path, "--read-seconds", "3") as (url, process, _, _):
        stalled = [_open_upload(url, 500_000, b"x" * 1000) for _ in range(4)]
        try:
            time.sleep(0.5)
            status, answer = post_model(url, unet_bytes())
            assert status == 409 and "receiving 4 other models" in answer["error"], answer
            assert all(status_of(read_to_close(connection)) == 408 for connection in stalled)
        finally:
            for connection in stalled:
                connection.close()
        assert post_model(url, unet_bytes())[0] == 200
        assert_serving(url, process)


def _huge_input_model() -> bytes:
    from space import _tf
    from space.convert import to_tflite

    keras = _tf.keras()
    inputs = keras.Input((8192, 8192, 3), batch_size=1)
    return to_tflite(keras.Model(inputs, keras.layers.ReLU()(inputs)))


def _peak_mib(process) -> float:
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def test_tensor_memory_and_benchmark_time_are_capped(tmp_path):
    """Issue 17.6: a 1 KB model declaring a 1x8192x8192x3 input took the agent to 1.56 GB, and a protocol
    within the client's limits (600 s x 20 attempts) held the board for 3.3 hours: now both are refused
    (--max-tensor-mb, --max-seconds), before any tensor is allocated and within the agent's limit."""
    model = _huge_input_model()
    assert len(model) < 2000
    with agent_process(tmp_path, "--max-seconds", "3") as (url, process, _, _):
        status, answer = post_model(url, model)
        assert status == 400 and "--max-tensor-mb" in answer["error"], answer
        assert _peak_mib(process) < 400
        status, answer = post_model(url, unet_bytes(), {"min_seconds": 600, "max_attempts": 20})
        assert status == 400 and "--max-seconds" in answer["error"], answer
        started = time.monotonic()
        status, answer = post_model(url, unet_bytes(), {"warmup": 0, "runs": 100_000, "min_seconds": 0, "threads": 1, "max_attempts": 20})
        assert status == 400 and "--max-seconds" in answer["error"], answer
        assert time.monotonic() - started < 15
        assert post_model(url, unet_bytes())[0] == 200
        assert_serving(url, process)


@pytest.mark.parametrize("option", ["--max-tensor-mb", "--max-seconds", "--read-seconds", "--max-body-mb"])
def test_agent_limits_must_be_positive(option):
    from evaluators.agent import main

    assert main(["serve", "--port", "0", option, "0"]) == 2


def test_the_access_log_keeps_no_query_string_and_no_control_character(tmp_path):
    """Issue 17.11: a token sent as ``?token=`` landed in the log, and a request line with escape
    sequences was written raw to the terminal that shows it."""
    log = tmp_path / "agent.log"
    with agent_process(tmp_path, log=log) as (url, process, _, _):
        raw(url, b"GET /info?token=s3cret-in-query HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Connection: close\r\n\r\n")
        raw(url, b"GET /x?token=s3cret-in-query\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw(url, b"GET /info?token=s3cret-in-query junk junk\r\n\r\n")  # http.server's own 400 quotes the request line
        assert_serving(url, process)
    text = log.read_text()
    assert "GET /info?..." in text and "s3cret" not in text, text
    assert "\x1b" not in text and "\x07" not in text, text
