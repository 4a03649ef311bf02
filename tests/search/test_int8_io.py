"""``--quant-modes int8-io``: full-integer models with int8 input and output, searched end to end."""

import pytest

from space.quant import QUANT_CHOICES, parse_quant_choice, quant_choice
from space.sampling import SearchSpace, in_space, params_of
from space.spec import QuantSpec, uniform
from studies.storage import load_study
from studies.store import ResultStore
from tests.conftest import run_cli

QUICK = ("--data", "synthetic", "--data-limit", "24", "--image-size", "32", "--epochs", "1", "--batch-size", "8",
         "--depths", "3", "--widths", "4", "--threads", "1", "--no-presets", "--block-kinds", "standard", "--dilations", "1")


def test_int8_io_names_int8_with_int8_input_and_output_and_round_trips():
    assert "int8-io" in QUANT_CHOICES and "float16-io" not in QUANT_CHOICES
    assert parse_quant_choice("int8-io") == ("int8", "int8") and parse_quant_choice("int8") == ("int8", "float32")
    assert quant_choice("int8", "int8") == "int8-io"
    with pytest.raises(ValueError, match="int8-io"):
        parse_quant_choice("float16-io")
    space = SearchSpace(quant_modes=("int8-io", "float32"))
    spec = uniform("standard", depth=3, base_width=8, input_size=32).replace(quant=QuantSpec("int8", 64, "int8"))
    assert params_of(spec, space)["quant"] == "int8-io" and in_space(spec, space)


@pytest.mark.slow  # about 30 s or more: the default tier stays under 15 minutes
def test_a_search_of_int8_io_converts_runs_and_scores_with_quantized_inputs(tmp_path):
    from studies.export import io_details

    result = run_cli("start", "--budget", "1", "--study", "io", "--quant-modes", "int8-io", "--quiet", *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    (trial,) = load_study(url, "io").get_trials()
    assert trial.state.name == "COMPLETE", trial.user_attrs.get("error")
    assert trial.user_attrs["spec"]["quant"]["io_type"] == "int8"
    assert 0.0 <= trial.user_attrs["dice"] <= 1.0 and trial.user_attrs["latency_ms"] > 0
    with ResultStore(url, create=False) as store:
        details = io_details(store.artifact(trial._trial_id))
    assert details["inputs"][0]["dtype"] == "int8" and details["outputs"][0]["dtype"] == "int8"
