"""Option groups that several commands share; the search options themselves are in ``search.options``."""

from __future__ import annotations

import argparse

from search.options import DEFAULT_STORAGE, add_option, csv_of, positive_int  # noqa: F401 - the commands' argument types


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "storage", concrete=True)


def add_study_options(parser: argparse.ArgumentParser, what: str = "study") -> None:
    """``--study`` (default: the study with the most recent trial) and ``--storage``."""
    parser.add_argument("--study", metavar="NAME", help=f"{what} (default: the most recently active study)")
    add_storage_option(parser)
