import subprocess
import sys

import pytest

from search.cli import COMMANDS, build_parser
from space.presets import PRESETS
from tests.conftest import ROOT


def test_help_answers_without_importing_tensorflow():
    code = "import sys, search.cli; search.cli.build_parser(); print(sorted(m for m in ('tensorflow', 'optuna', 'plotly', 'sqlalchemy') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_help_lists_the_commands(cli):
    result = cli("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", [*COMMANDS, "resume"])
def test_every_command_answers_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([command, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: search {command}")
    assert "``" not in shown  # the docstring's markup is not for people


@pytest.mark.parametrize("words, line", [
    (("start", "--budjet", "5"), "search: error: unknown option --budjet; did you mean --budget? (see 'search start --help')"),
    (("export", "--pik", "knee"), "search: error: unknown option --pik; did you mean --pick? (see 'search export --help')"),
    (("bench", "m.tflite", "--runz=3"), "search: error: unknown option --runz; did you mean --runs? (see 'search bench --help')"),
    (("agent", "serve", "--hots", "h"), "search: error: unknown option --hots; did you mean --host? (see 'search agent serve --help')"),
    (("--degub", "space"), "search: error: unknown option --degub; did you mean --debug? (see 'search --help')"),
    (("space", "--zzz"), "search: error: unknown option --zzz (see 'search space --help')"),
    (("start", "--debug"), "search: error: --debug goes before the command: search --debug start ... (see 'search start --help')"),
])
def test_a_misspelt_option_is_named_with_the_closest_one(words, line, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(list(words))
    assert done.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_abbreviations_and_the_equals_form_still_parse():
    args = build_parser().parse_args(["start", "--budg", "5", "--data=synthetic"])
    assert (args.budget, args.data) == (5, "synthetic")


def test_space_prints_the_choices_and_narrows(cli):
    result = cli("space", "--block-kinds", "depthwise,fire", "--quant-modes", "int8")
    assert result.returncode == 0
    rows = dict(line.split("  ", 1) for line in result.stdout.splitlines())
    assert rows["per stage: kind"].strip() == "depthwise, fire"
    assert rows["quant"].strip() == "int8"


def test_bad_narrowing_is_one_line_and_status_2(cli):
    result = cli("space", "--block-kinds", "inception")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "search: error: block_kinds: inception not allowed; choose from standard, group, depthwise, fire, shuffle, residual, "
        "inverted, factorized"
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # 15-30 s: the default tier stays under 15 minutes
def test_presets_lists_costs(cli):
    result = cli("presets", "--names", "unet,depthwise", "--image-size", "32", "--quant-modes", "float32,int8")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert lines["unet"][1] == "1,945,521"
    unet_float_kb, unet_int8_kb = float(lines["unet"][3]), float(lines["unet"][4])
    assert 3.5 < unet_float_kb / unet_int8_kb < 4.5  # int8 weights are a quarter of float32
    assert "absl" not in result.stderr and "fully_quantize" not in result.stderr  # TensorFlow's chatter went to a log


def test_presets_refuse_a_bad_name_in_one_line_before_tensorflow_loads(cli):
    result = cli("presets", "--names", "unet,unet-large")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "search: error: unknown preset 'unet-large'; choose one of " + ", ".join(PRESETS)
    ]
