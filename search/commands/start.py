"""``search start``: run (or continue) a multi-objective search; ``search resume`` continues one."""

from __future__ import annotations

import argparse

from search.options import add_options, continuing_text


def register(subparsers):
    for name, text in (("start", "run or continue a search"), ("resume", "continue a search (same as start)")):
        parser = subparsers.add_parser(name, help=text, description=__doc__, epilog=continuing_text(),
                                       argument_default=None)
        _add_options(parser)
        parser.set_defaults(run=run, resume=name == "resume")


def _add_options(parser: argparse.ArgumentParser) -> None:
    groups = add_options(parser)
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file with the same keys as these options (dashes or underscores); flags win")
    output = groups["how to run"].add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", default=False, help="print only the summary")
    output.add_argument("--json", action="store_true", default=False, help="one JSON object per line, for scripts")


def run(args):
    import os

    from search.config import default_study_name, resolve
    from search.loop import run_search
    from search.options import BY_NAME, TOKEN_ENV
    from search.progress import make_reporter

    flags = {name: getattr(args, name) for name in BY_NAME}
    flags["device_token"] = flags["device_token"] or os.environ.get(TOKEN_ENV)
    config, explicit = resolve(flags, args.config)
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
