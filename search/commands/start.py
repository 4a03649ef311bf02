"""``search start``: run (or continue) a multi-objective search; ``search resume`` continues one."""

from __future__ import annotations

import argparse

from search.commands.options import add_space_options, csv_of, positive_int
from search.config import EARLY_STOP, LR_SCHEDULES, SAMPLERS


def register(subparsers):
    for name, text in (("start", "run or continue a search"), ("resume", "continue a search (same as start)")):
        parser = subparsers.add_parser(name, help=text, description=__doc__, argument_default=None)
        _add_options(parser)
        parser.set_defaults(run=run, resume=name == "resume")


def budget(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give the number of trials, e.g. --budget 50") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} trials is not a budget; give at least 1, e.g. --budget 50")
    return value


def _add_options(parser):
    parser.add_argument("--budget", type=budget, help="trials in the study, across all workers (default 50)")
    parser.add_argument("--study", help="study name (default: search-<today's date>)")
    parser.add_argument("--storage", metavar="URL", help="SQLAlchemy URL (default sqlite:///studies.db; postgresql://... for many machines)")
    parser.add_argument("--config", help="TOML file with the same keys as these options")
    data = parser.add_argument_group("data and training")
    data.add_argument("--data", help="'synthetic' (built in, the default) or a folder with images/ and masks/")
    data.add_argument("--image-size", type=positive_int, help="input size of the models (default 32)")
    data.add_argument("--channels", type=int, choices=(1, 3), help="input channels (default 3)")
    data.add_argument("--data-limit", type=positive_int, help="use at most this many image pairs")
    data.add_argument("--epochs", type=positive_int, help="training epochs per trial (default 3)")
    data.add_argument("--batch-size", type=positive_int, help="training batch size (default 8)")
    data.add_argument("--learning-rate", type=float, help="Adam's peak learning rate (default 0.002)")
    data.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                      help="cosine (default): warm up, then decay to 0 by the last epoch; or constant")
    device = parser.add_argument_group("latency")
    device.add_argument("--device", dest="devices", action="append", metavar="URL",
                        help="a Pi agent, http://HOST:8765 (repeat for a pool of identical boards; default: this machine)")
    device.add_argument("--device-token", help="the agents' token (or set NAS_LITE_DEVICE_TOKEN)")
    device.add_argument("--threads", type=positive_int, help="LiteRT threads (default 4, as on a Pi 4)")
    device.add_argument("--latency-clock", choices=("wall", "cpu"),
                        help="wall (default) or cpu: CPU time of one LiteRT thread (--threads 1), steadier on a shared machine")
    goal = parser.add_argument_group("objectives and constraints")
    goal.add_argument("--objectives", type=csv_of(str), metavar="O,O", help="two or three of dice, latency, size (default all three)")
    goal.add_argument("--max-latency-ms", type=float, help="reject slower candidates before training")
    goal.add_argument("--max-size-kb", type=float, help="reject larger candidates before training")
    goal.add_argument("--min-dice", type=float, help="trials below this Dice are infeasible")
    add_space_options(parser)
    run = parser.add_argument_group("how to run")
    run.add_argument("--sampler", choices=SAMPLERS, help="Optuna sampler (default tpe)")
    run.add_argument("--seed", type=int, help="seed for sampling, data split and training (default 0)")
    run.add_argument("--workers", type=positive_int, help="worker processes on this machine (default 1)")
    run.add_argument("--timeout", type=float, help="start no new trial after this many seconds")
    run.add_argument("--enqueue-presets", action="store_true", default=None, help="evaluate the hand-designed presets first")
    run.add_argument("--early-stop", choices=EARLY_STOP,
                     help="stop a trial whose validation Dice trails every front member (front, default), every front "
                          "member no slower and no larger (cheaper: spares light candidates, times each judged one "
                          "untrained), or never (off)")
    output = run.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", default=False, help="print only the summary")
    output.add_argument("--json", action="store_true", default=False, help="one JSON object per line, for scripts")


OPTION_KEYS = (
    "budget", "study", "storage", "data", "image_size", "channels", "data_limit", "epochs", "batch_size", "learning_rate",
    "lr_schedule", "devices",
    "device_token", "threads", "latency_clock", "objectives", "max_latency_ms", "max_size_kb", "min_dice", "block_kinds", "quant_modes",
    "depths", "widths", "groups", "dilations", "sparsities", "search_input_size", "sampler", "seed", "workers",
    "timeout", "enqueue_presets", "early_stop",
)


def run(args):
    import os

    from search.config import default_study_name, read_toml, resolve
    from search.loop import run_search
    from search.progress import make_reporter

    flags = {key: getattr(args, key) for key in OPTION_KEYS}
    flags["device_token"] = flags["device_token"] or os.environ.get("NAS_LITE_DEVICE_TOKEN")
    explicit = {key for key, value in flags.items() if value is not None}
    if args.config:
        explicit |= set(read_toml(args.config))
    config = resolve(flags, args.config)
    if config.study is None:
        if args.resume:
            raise ValueError("search resume: name the study with --study NAME (see 'search studies')")
        config = config.replace(study=default_study_name())
    if args.resume:
        _check_exists(config)
    reporter = make_reporter("json" if args.json else "quiet" if args.quiet else "bar")
    run_search(config, explicit, reporter)


def _check_exists(config) -> None:
    import optuna

    from studies.storage import open_storage

    names = [s.study_name for s in optuna.get_all_study_summaries(open_storage(config.storage))]
    if config.study not in names:
        raise LookupError(f"--study {config.study}: no such study in {config.storage}; studies there: {', '.join(names) or 'none'}")
