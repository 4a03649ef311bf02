"""Property-based fuzzing (hypothesis, derandomized and bounded): the TOML config and the agent's
request handling. Whatever a file or a client sends, the answer is a valid config or one ValueError
line; an HTTP answer, and an agent that serves on."""

from __future__ import annotations

import datetime
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.options import BY_NAME
from tests.evaluators.latency_helpers import QUICK, TOKEN, post_model, unet_bytes
from tests.reliability.test_agent_security import AUTH, agent_process, assert_serving, raw, status_of

pytestmark = pytest.mark.timeout(900)
BOUNDED = settings(max_examples=250, deadline=2000, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# -- TOML ----------------------------------------------------------------------------------------------
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x7f"), max_size=12)
SCALARS = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.integers(-3, 300) | st.floats() | TEXT
           | st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)) | st.dates() | st.times()
           | st.sampled_from(["float32,int8", "depthwise", "tpe", "1,2", "", ","]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
KEYS = st.sampled_from(sorted(BY_NAME)) | st.sampled_from(sorted(BY_NAME)).map(lambda k: k.replace("_", "-")) | TEXT


def toml(value) -> str:
    """``value`` as a TOML value (inline tables and arrays); the standard library has no writer."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(toml, value)) + "]"
    return "{" + ", ".join(f"{toml(str(k))} = {toml(v)}" for k, v in value.items()) + "}"


@st.composite
def documents(draw) -> str:
    entries = draw(st.dictionaries(KEYS, VALUES, max_size=5))
    lines = [f"{toml(key)} = {toml(value)}" for key, value in entries.items()]
    where = draw(st.sampled_from(["top", "table", "not a table"]))
    if where == "table":
        lines.insert(0, "[search]")
    elif where == "not a table":
        lines.insert(0, f"search = {toml(draw(SCALARS))}")
    return "\n".join(lines) + "\n"


@BOUNDED
@given(document=documents())
def test_any_toml_value_for_any_key_is_a_config_or_one_value_error_line(tmp_path_factory, document):
    from search.config import SearchConfig, resolve

    path = tmp_path_factory.mktemp("toml") / "search.toml"
    path.write_text(document, encoding="utf-8")
    try:
        config, _ = resolve({}, str(path))
    except ValueError as error:
        message = str(error)
        assert message.strip() and "\n" not in message and "\r" not in message, message
        return
    assert isinstance(config, SearchConfig)


@pytest.mark.parametrize("content", [b"budget = 5\n\xff\xfe\n", b"\x00\x00"])
def test_a_config_file_that_is_not_utf8_text_is_one_line(tmp_path, content):
    from search.config import resolve

    path = tmp_path / "search.toml"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"^--config {path}: not"):
        resolve({}, str(path))


# -- the agent -----------------------------------------------------------------------------------------
PROTOCOL_FIELDS = ["warmup", "runs", "min_seconds", "threads", "max_cv", "max_attempts", "clock"]
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)
PROTOCOLS = (st.dictionaries(st.sampled_from(PROTOCOL_FIELDS) | st.text(max_size=6), JSON | st.integers(0, 3) | st.sampled_from(["wall", "cpu"]), max_size=5)
             | JSON)
HEADER_NAME = st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"), min_size=1, max_size=20)
HEADER_VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60)


@st.composite
def requests(draw) -> bytes:
    model = unet_bytes()
    body = draw(st.sampled_from([model, model[: len(model) // 2], b"", b"not a model"]))
    length = draw(st.sampled_from([str(len(body)), str(len(body) + 7), "0", "-1", "1e3", " 12 ", "+5", "0x10",
                                   "99999999999999999999", "١٢", str(len(body)) + "," + str(len(body))]))
    headers = [f"Content-Length: {length}", f"X-Protocol: {json.dumps(draw(PROTOCOLS))}"]
    headers += [f"{name}: {value}" for name, value in draw(st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=4))]
    draw(st.randoms()).shuffle(headers)
    head = "POST /benchmark HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + "".join(h + "\r\n" for h in headers)
    return head.encode("latin-1", "replace") + AUTH + b"\r\n" + body


@pytest.fixture(scope="module")
def bounded_agent(tmp_path_factory):
    with agent_process(tmp_path_factory.mktemp("fuzz17"), "--max-body-mb", "1", "--max-seconds", "1",
                       "--read-seconds", "2") as served:
        yield served


@settings(max_examples=200, deadline=10_000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_any_header_length_and_protocol_gets_an_answer_and_the_agent_serves_on(bounded_agent, request):
    url, process, _, _ = bounded_agent
    answer = raw(url, request, timeout=30)
    # 401 too: a random header named like Authorization (any case, even empty) comes before the real one
    assert status_of(answer) in (200, 400, 401, 408, 411, 413, 431), answer[:300]
    assert process.poll() is None, f"the agent died on {request[:300]!r}"


def test_after_the_protocol_fuzz_it_still_measures(bounded_agent):
    url, process, _, _ = bounded_agent
    assert_serving(url, process)
    assert post_model(url, unet_bytes(), QUICK)[0] == 200
