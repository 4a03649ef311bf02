"""``search``: the command line. Each subcommand lives in ``search/commands/<name>.py``.

A command module is light to import (TensorFlow, plotly and Optuna are imported inside ``run``)
and defines ``register(subparsers)``, which adds its parser and sets ``run`` as the handler.
Errors for people: bad input (``ValueError``, ``LookupError``, ``FileNotFoundError``) is one line
on stderr and exit status 2; any other failure is one line and exit status 1. ``--debug`` shows
the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from search import __version__

COMMANDS = ("space", "presets", "start", "status", "studies", "compare", "prune", "bench", "agent", "dashboard", "report", "export",
            "confirm", "predict", "data", "device")
TOP_LEVEL = ("--debug", "--version")  # the options of ``search`` itself, before the command
INPUT_ERRORS = (ValueError, LookupError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                PermissionError)


class HelpFormatter(argparse.HelpFormatter):
    """Lines break between words only: never inside an option such as --enqueue-presets. The
    descriptions are the commands' docstrings: their ``literal`` marks are dropped."""

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text, width, indent):
        return textwrap.fill(" ".join(text.replace("``", "").split()), width, initial_indent=indent, subsequent_indent=indent,
                             break_on_hyphens=False)


class ArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"search: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        self._check_spelling(args)
        return super().parse_known_args(args, namespace)

    def _check_spelling(self, args: list[str]) -> None:
        """An unknown ``--option`` is named first, with the closest known one: before argparse's own
        checks, which would report a required option missing or the unknown one without a hint."""
        from search.options import did_you_mean

        known = [string for action in self._actions for string in action.option_strings]
        for word in args:
            if word == "--" or (self._subparsers is not None and not word.startswith("-")):
                return  # the rest are values, or the command's own, which its parser checks
            name = word.split("=", 1)[0]
            if name in TOP_LEVEL and name not in known:
                self.error(f"{name} goes before the command: {self.prog.replace(' ', f' {name} ', 1)} ...")
            if name.startswith("--") and not any(string.startswith(name) for string in known):
                self.error(f"unknown option {name}{did_you_mean(name, known)}")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="search",
        description="nas-lite: search U-Net variants for a Raspberry Pi (Dice vs latency vs size), export TFLite.",
    )
    parser.add_argument("--version", action="version", version=f"nas-lite {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow's logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in COMMANDS:
        importlib.import_module(f"search.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.debug:
        import os

        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    try:
        status = args.run(args) or 0
        if getattr(args, "default_note", None):
            print(args.default_note, file=sys.stderr)
        return status
    except KeyboardInterrupt:
        print("search: interrupted; finished trials are stored, start the same command again to continue", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place that turns errors into messages
        if args.debug:
            raise
        status = 2 if isinstance(error, INPUT_ERRORS) else 1
        from studies.names import printable

        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"search: error: {printable(message)}", file=sys.stderr)
        return status
