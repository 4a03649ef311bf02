"""The options of a search, each declared once: its name, type, range, default, help and role.

The parser of ``search start`` (and the options ``search space``, ``search presets`` and ``search
bench`` share with it), the TOML reader of ``--config``, the fields of ``SearchConfig`` and the
check made when a study is continued are all read off ``OPTIONS``. Light to import: ``search
--help`` reads it.

A role says what an option means for a stored study:

- ``STUDY``: it defines what the study's numbers mean; continuing with another value is refused.
- ``KEPT``: the study keeps it, but it may change; continuing without it uses the stored value.
- ``RUN``: it applies to the run it is given to and is never read back from the study.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any

from search.samplers import SAMPLER_NAMES as SAMPLERS  # the registry is light: Optuna loads inside its factories

STUDY, KEPT, RUN = "study", "kept", "run"
MAX_BUDGET = 10_000  # a day of the quickest trials; also bounds the WAITING rows one start inserts
MAX_IMAGE_SIZE = 2048  # a 2048x2048 U-Net is far beyond a Pi already; beyond it the data alone outgrows memory
DEFAULT_STORAGE = "sqlite:///studies.db"  # studies.storage.DEFAULT_URL, not imported: keeps --help fast
TOKEN_ENV = "NAS_LITE_DEVICE_TOKEN"
EARLY_STOP = ("front", "cheaper", "off")  # see search.trial.Verdict
LR_SCHEDULES = ("cosine", "constant")  # see evaluators.train.learning_rate_schedule
DISTILL_TERMS = ("bce", "bce-dice")  # see evaluators.distill.SOFT_TERMS
PRECISIONS = ("float32", "auto", "bfloat16")  # see evaluators.train.PRECISIONS
CLOCKS = ("wall", "cpu")  # see evaluators.runtime.Protocol
KIND_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


@dataclasses.dataclass(frozen=True)
class Option:
    name: str  # the key (TOML, stored config, SearchConfig field); the flag is --name with dashes
    kind: type  # int, float, str or bool; of each item when ``many``
    default: Any
    help: str = ""
    role: str = STUDY
    group: str | None = None  # the section of ``--help``
    low: float | None = None  # the smallest value allowed
    above: float | None = None  # values must be greater than this
    high: float | None = None  # the largest value allowed
    choices: tuple = ()
    many: bool = False  # a tuple: comma-separated on the command line, an array in TOML
    repeat: bool = False  # with ``many``: the flag is given once per item instead
    flag: str | None = None  # when the flag is not --name
    metavar: str | None = None
    shown: str | None = None  # how ``--help`` words the default, when not the value itself
    wrong: str | None = None  # how an out-of-range ``{value}`` reads, when not the generic way
    hint: str | None = None  # how to fix a bad value, appended to the message
    space_field: str | None = None  # the ``space.sampling.SearchSpace`` field it narrows
    secret: bool = False  # never stored
    aliases: tuple[str, ...] = ()  # more flags for it (a bool gets --no-FLAG for each too)
    words: tuple[str, ...] = ()  # words it takes as they are, in place of a value (--rungs auto)

    @property
    def option_string(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


_DATA, _LATENCY, _GOALS, _SPACE, _RUN = (
    "data and training", "latency", "objectives and constraints", "search space", "how to run")

OPTIONS = (
    Option("budget", int, 50, "trials in the study, across all workers", KEPT, low=1, high=MAX_BUDGET,
           wrong="{value} trials is not a budget", hint=f"give 1 to {MAX_BUDGET:,} trials, e.g. --budget 50"),
    Option("study", str, None, "study name", RUN, metavar="NAME", shown="search-<today's date>"),
    Option("storage", str, DEFAULT_STORAGE, "database URL; postgresql://USER:PW@HOST/DB for many machines", RUN,
           metavar="URL"),
    Option("data", str, "synthetic", "'synthetic' (built in) or a folder with images/ and masks/", group=_DATA),
    Option("image_size", int, 32, "input size of the models", group=_DATA, low=1, high=MAX_IMAGE_SIZE,
           hint=f"give 1 to {MAX_IMAGE_SIZE} pixels, e.g. --image-size 128"),
    Option("channels", int, 3, "input channels", group=_DATA, choices=(1, 3)),
    Option("synthetic_count", int, 256, "image pairs the built-in data generates", group=_DATA, low=1),
    Option("data_limit", int, None, "use at most this many image pairs", group=_DATA, low=1),
    Option("val_fraction", float, 0.2, "share of the pairs the search selects on (validation)", group=_DATA,
           above=0, high=0.8),
    Option("test_fraction", float, 0.2, "share of the pairs held out for reporting only (a folder's own test/ "
           "replaces it; 0: none)", group=_DATA, low=0, high=0.8),
    Option("epochs", int, 9, "training epochs per candidate (with rungs: those of the last rung)", group=_DATA, low=1),
    Option("rungs", int, "auto", "epochs at the end of each rung, e.g. 2,6,18: every candidate trains to the first, "
           "and the best 1/eta of each rung (and the unet reference) go on to the next; auto: epochs/eta^2, "
           "epochs/eta, epochs (1,3,9); off: every candidate trains all its epochs", group=_DATA, many=True,
           metavar="E,E", low=1, words=("auto", "off"), hint="give increasing epochs such as 2,6,18, auto or off"),
    Option("eta", int, 3, "with --rungs: 1/eta of each rung is promoted", group=_DATA, low=2),
    Option("distill", str, None, "a teacher for every searched candidate: a preset name, such as unet, trained "
           "once per study for --epochs, or trial:N@STUDY, a stored trial of this storage as it was stored",
           group=_DATA, metavar="TEACHER", shown="none"),
    Option("distill_weight", float, 0.5, "with --distill: the weight of the teacher's soft targets in the loss",
           group=_DATA, low=0, high=1),
    Option("distill_temperature", float, 2.0, "with --distill: the temperature that softens both predictions",
           group=_DATA, above=0),
    Option("distill_term", str, "bce-dice", "with --distill: the soft term, bce (Hinton's) or bce-dice (the mask's own "
           "loss, with the teacher's soft mask as the target)", group=_DATA, choices=DISTILL_TERMS),
    Option("fine_tune_epochs", int, 1, "epochs of fine-tuning after --channel-keeps pruning or --rank-fractions "
           "factorisation (0: none)", group=_DATA, low=0),
    Option("batch_size", int, 8, "training batch size", group=_DATA, low=1),
    Option("precision", str, "float32", "training arithmetic: float32, bfloat16 (mixed, float32 weights) or auto "
           "(bfloat16 where it measured faster: on CPUs with bfloat16 instructions, models whose convolutions all have "
           "a multiple of 16 filters, none depthwise)", group=_DATA,
           choices=PRECISIONS),
    Option("learning_rate", float, 2e-3, "Adam's peak learning rate", group=_DATA, above=0),
    Option("lr_schedule", str, "cosine", "cosine: warm up, then decay to 0 by the last epoch; or constant",
           group=_DATA, choices=LR_SCHEDULES),
    Option("devices", str, (), "a Pi agent, http://HOST:8765; repeat for a pool of identical boards", KEPT,
           group=_LATENCY, many=True, repeat=True, flag="--device", metavar="URL", shown="this machine"),
    Option("device_token", str, None, "the agents' token", RUN, group=_LATENCY, metavar="T", shown=f"${TOKEN_ENV}",
           secret=True),
    Option("latency", str, "measured", "measured (time every model on the device), or predicted:NAME (the "
           "latency model 'search device calibrate' stored for device NAME; the device need not be attached)",
           group=_LATENCY, metavar="HOW"),
    Option("verify_front", bool, False, "with --latency predicted:NAME and the device attached: time the final "
           "front on it and store the measured latency beside the predicted one", RUN, group=_LATENCY),
    Option("drift_every", int, 10, "time a fixed reference model every N trials of a worker and re-time the "
           "trials before a drift beyond 5% (0: never)", KEPT, group=_LATENCY, low=0),
    Option("threads", int, None, "LiteRT threads (a Pi 4 has 4 cores)", group=_LATENCY, low=1,
           shown="1 with the cpu clock, else 4"),
    Option("latency_clock", str, None, "wall: what a user waits for; cpu: CPU time of one LiteRT thread "
           "(--threads 1), steadier on a machine shared with other work", group=_LATENCY, choices=CLOCKS,
           shown="cpu on this machine, wall on a board (--device) or with --threads above 1"),
    Option("objectives", str, ("dice", "latency_ms", "size_kb"), "two or three of dice, latency, size",
           group=_GOALS, many=True, metavar="O,O", shown="all three"),
    Option("max_latency_ms", float, None, "reject slower candidates before training", group=_GOALS, above=0),
    Option("max_size_kb", float, None, "reject larger candidates before training", group=_GOALS, above=0),
    Option("min_dice", float, None, "trials below this Dice are infeasible", group=_GOALS, low=0, high=1),
    Option("block_kinds", str, None, "block kinds to search: standard, group, depthwise, fire, shuffle, and "
           "residual, inverted, factorized when named", group=_SPACE, many=True, metavar="K,K", shown="the first five",
           space_field="block_kinds"),
    Option("quant_modes", str, None, "quantization modes to search", group=_SPACE, many=True, metavar="M,M",
           space_field="quant_modes"),
    Option("depths", int, None, "encoder depths to search (3 to 5)", group=_SPACE, many=True, metavar="D,D",
           space_field="depths"),
    Option("widths", int, None, "base widths to search (multiples of 4)", group=_SPACE, many=True, metavar="W,W",
           space_field="base_widths"),
    Option("groups", int, None, "group counts for group/shuffle blocks", group=_SPACE, many=True, metavar="G,G",
           space_field="groups"),
    Option("dilations", int, None, "dilation rates (1, 2, 4)", group=_SPACE, many=True, metavar="R,R",
           space_field="dilations"),
    Option("kernels", int, None, "kernel sizes of each stage's convolutions (3, 5)", group=_SPACE, many=True,
           metavar="K,K", shown="3", space_field="kernels"),
    Option("expansions", int, None, "expansion factors of inverted blocks (2, 4, 6)", group=_SPACE, many=True,
           metavar="E,E", shown="2,4,6", space_field="expansions"),
    Option("upsamplings", str, None, "the decoder's upsampling: transpose (transposed conv) or resize (1x1 conv + "
           "bilinear resize)", group=_SPACE, many=True, metavar="U,U", shown="transpose", space_field="upsamplings"),
    Option("skip_merges", str, None, "how the decoder merges the encoder's skips: concat or add", group=_SPACE,
           many=True, metavar="M,M", shown="concat", space_field="skip_merges"),
    Option("sparsities", float, None, "magnitude-pruning targets, e.g. 0,0.5,0.75", group=_SPACE, many=True,
           metavar="S,S", space_field="sparsities"),
    Option("channel_keeps", float, None, "structured channel pruning after training: shares of each convolution's "
           "filters kept (smallest L1 norms removed, then a brief fine-tune), e.g. 1,0.75,0.5", group=_SPACE,
           many=True, above=0, high=1, metavar="K,K", shown="1 (off)", space_field="channel_keeps"),
    Option("rank_fractions", float, None, "low-rank (SVD) factorisation of trained KxK convolutions: shares of the "
           "full rank kept, then a brief fine-tune, e.g. 1,0.5,0.25", group=_SPACE, many=True, above=0,
           high=1, metavar="R,R", shown="1 (off)", space_field="rank_fractions"),
    Option("search_input_size", int, None, "search the input resolution too", group=_SPACE, many=True, low=1, high=MAX_IMAGE_SIZE,
           metavar="N,N", space_field="input_sizes"),
    Option("sampler", str, "tpe", "Optuna sampler", KEPT, group=_RUN, choices=SAMPLERS),
    Option("seed", int, 0, "seed for sampling, data split and training", group=_RUN, low=0),
    Option("workers", int, 1, "worker processes on this machine, for this run", RUN, group=_RUN, low=1),
    Option("timeout", float, None, "start no new trial after this many seconds of this run", RUN, group=_RUN,
           above=0),
    Option("enqueue_presets", bool, True, "evaluate the hand-designed presets first, on the same plot "
           "(--no-presets to skip them)", KEPT, group=_RUN, aliases=("--presets",)),
    Option("early_stop", str, "front", "stop a trial whose validation Dice trails every front member (front), "
           "every front member no slower and no larger (cheaper: spares light candidates, times each judged one "
           "untrained), or never (off)", KEPT, group=_RUN, choices=EARLY_STOP),
)
BY_NAME = {option.name: option for option in OPTIONS}
SPACE_OPTIONS = tuple(option.name for option in OPTIONS if option.space_field)
KEYS_OF = {role: frozenset(option.name for option in OPTIONS if option.role == role) for role in (STUDY, KEPT, RUN)}


# -- checking values ------------------------------------------------------------------------------
def convert(option: Option, value: Any, choices: bool = True) -> Any:
    """``value`` (from TOML, a stored study or Python) as ``option`` holds it: a tuple when ``many``,
    a float for an int given to a float option. Raises ValueError saying what is wrong, without the
    option's name (the caller names it as its user wrote it)."""
    if value is None and (option.default is None or option.words) or value in option.words:
        return value  # a word is resolved by SearchConfig, which may leave None (--rungs off)
    if not option.many:
        return _item(option, value, choices)
    if isinstance(value, str):
        value = _split(value)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{value!r} is not a list of {_words(option)}")
    return tuple(_item(option, item, choices) for item in value)


def checked(option: Option, value: Any) -> Any:
    """``convert``, with the flag named in the message: what ``SearchConfig`` checks every field with."""
    try:
        return convert(option, value)
    except ValueError as error:
        raise ValueError(f"{option.option_string}: {error}") from None


def _item(option: Option, value: Any, choices: bool) -> Any:
    if option.kind is float and type(value) is int:
        value = float(value)
    if type(value) is not option.kind:  # bool is an int to Python, and 3.0 is no whole number
        raise ValueError(_with_hint(option, f"{value!r} is not {KIND_WORDS[option.kind]}"))
    if option.kind is float and not math.isfinite(value):
        raise ValueError(_with_hint(option, f"{value} is not a finite number"))
    if choices and option.choices and value not in option.choices:
        raise ValueError(f"unknown {value!r}; choose one of {', '.join(map(str, option.choices))}")
    problem = _range_problem(option, value)
    if problem:
        raise ValueError(_with_hint(option, option.wrong.format(value=value) if option.wrong else problem))
    return value


def _range_problem(option: Option, value) -> str | None:
    if option.kind not in (int, float):
        return None
    if option.low is not None and option.high is not None and not option.low <= value <= option.high:
        return f"must be between {option.low} and {option.high}, got {value}"
    if option.low is not None and value < option.low:
        return f"must be at least {option.low}, got {value}"
    if option.high is not None and value > option.high:
        return f"must be at most {option.high}, got {value}"
    if option.above is not None and not value > option.above:
        return "must be positive, got " + str(value) if option.above == 0 else f"must be above {option.above}, got {value}"
    return None


def _with_hint(option: Option, message: str) -> str:
    return f"{message}; {option.hint}" if option.hint else message


def _words(option: Option) -> str:
    return {int: "whole numbers", float: "numbers", str: "names", bool: "true or false"}[option.kind]


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _from_text(option: Option, text: str):
    """A command-line word as ``option``'s kind (before ``convert`` checks it)."""
    if option.kind is str:
        return text
    try:
        return option.kind(text)
    except ValueError:
        raise ValueError(_with_hint(option, f"{text!r} is not {KIND_WORDS[option.kind]}")) from None


def latency_defaults(clock: str | None, threads: int | None, local: bool) -> tuple[str, int]:
    """The clock and thread count a search times with, where not given. On this machine, shared with
    training and often other work, the CPU time of one thread: its wall time on sub-millisecond models
    scatters more than the models differ (benchmarks/RESULTS.md, "Is the default job ranked on
    noise?"). On a board, or when several threads are asked for, wall time on 4 threads, as a Pi 4 runs."""
    clock = clock or ("cpu" if local and threads in (None, 1) else "wall")
    return clock, threads or (1 if clock == "cpu" else 4)


def did_you_mean(word: str, known) -> str:
    """``"; did you mean X?"`` for the closest of ``known``, or nothing."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean {close[0]}?" if close else ""


# -- the command line -----------------------------------------------------------------------------
def parser_type(option: Option):
    """The argparse ``type`` of ``option``: one word (one item for a repeated flag, a comma-separated
    list for ``many``) checked as ``convert`` checks a TOML value. Choices are left to argparse."""
    single = dataclasses.replace(option, many=False) if option.repeat else option

    def parse(text: str):
        if text in option.words:
            return text
        try:
            value = [_from_text(single, item) for item in _split(text)] if single.many else _from_text(single, text)
            return convert(single, value, choices=False)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = option.kind.__name__
    return parse


def whole_number(low: int):
    """An argparse type: a whole number of at least ``low``."""
    return parser_type(Option("count", int, None, low=low))


positive_int = whole_number(1)


def csv_of(kind=str):
    """An argparse type: ``a,b,c`` -> a tuple of ``kind``."""
    return parser_type(Option("items", kind, None, many=True))


def add_option(parser, name: str, concrete: bool = False, **changes) -> None:
    """Add option ``name`` to ``parser`` (or an argument group); ``changes`` replace fields of its
    declaration (another default, another help). Unless ``concrete``, the parser's default is None,
    "not given", so that the TOML file or the stored study can decide; ``--help`` shows the default."""
    option = dataclasses.replace(BY_NAME[name], **changes)
    default = option.default if concrete else None
    if option.kind is bool:
        parser.add_argument(option.option_string, *option.aliases, dest=name, action=argparse.BooleanOptionalAction,
                            default=default, help=help_text(option))
        return
    extra = {"choices": option.choices} if option.choices else {}
    if option.repeat:
        extra["action"] = "append"
        default = list(default) if default else None
    parser.add_argument(option.option_string, dest=name, type=parser_type(option), default=default,
                        metavar=option.metavar, help=help_text(option), **extra)


def add_options(parser, names=None) -> dict[str, Any]:
    """Add the options ``names`` (default: all) to ``parser``, each in its ``--help`` section;
    returns the sections by title."""
    groups = {None: parser}
    for name in names or BY_NAME:
        title = BY_NAME[name].group
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        add_option(groups[title], name)
    return groups


def help_text(option: Option) -> str:
    notes = []
    if option.shown or not (option.default is None or option.default is False or option.default == ()):
        notes.append(f"default {option.shown or _shown(option.default)}")
    if option.high is not None and option.low is not None:
        notes.append(f"{_shown(option.low)} to {_shown(option.high)}")
    elif option.high is not None:
        notes.append(f"above {_shown(option.above)}, at most {_shown(option.high)}")
    text = f"{option.help} ({'; '.join(notes)})" if notes else option.help
    return text.replace("%", "%%")  # argparse formats help with %


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(_shown, value))
    return f"{value:,}" if type(value) is int and value >= 10_000 else str(value)


def continuing_text() -> str:
    """What continuing a study does with each role, for ``search start --help``."""
    def flags(role):
        return ", ".join(BY_NAME[name].option_string for name in BY_NAME if name in KEYS_OF[role] - {"study", "storage"})

    return ("Starting an existing study continues it with the settings it was made with: an option that defines it, "
            f"given with another value, is refused. These may change and are kept when not given: {flags(KEPT)} (a "
            f"lower --budget withdraws the waiting trials beyond it). These apply to one run: {flags(RUN)}.")


# -- the TOML file --------------------------------------------------------------------------------
def read_toml(path: str | Path) -> dict[str, Any]:
    """The checked values of a ``--config`` file (keys with dashes or underscores, at the top or under
    ``[search]``); a bad key or value is a one-line ValueError that names the file and the key."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--config {path}: no such file") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"--config {path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"--config {path}: not valid TOML ({error})") from None
    table = data.get("search", data)
    if not isinstance(table, dict):
        raise ValueError(f"--config {path}: 'search' must be a table ([search]) of options, not {table!r}")
    values = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in BY_NAME:
            raise ValueError(f"--config {path}: unknown key {key!r}{did_you_mean(name, BY_NAME)} "
                             "(the keys are the options of 'search start --help')")
        try:
            values[name] = convert(BY_NAME[name], value)
        except ValueError as error:
            raise ValueError(f"--config {path}: {key}: {error}") from None
    return values


def space_of(values: dict):
    """The ``space.sampling.SearchSpace`` the space options in ``values`` ask for (unset: its defaults)."""
    from space.sampling import SearchSpace

    fields = {BY_NAME[name].space_field: values[name] for name in SPACE_OPTIONS if values.get(name) is not None}
    return SearchSpace(**fields)
