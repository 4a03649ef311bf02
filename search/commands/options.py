"""Option groups that several commands share; the search options themselves are in ``search.options``."""

from __future__ import annotations

import argparse

from search.options import DEFAULT_STORAGE, add_option, csv_of, positive_int  # noqa: F401 - the commands' argument types


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "storage", concrete=True)


DEFAULT_STUDY = "the newest search-<date> study, as 'search start' names them; else the most recently active"


def add_study_options(parser: argparse.ArgumentParser, what: str = "study") -> None:
    """``--study`` (default: the default study, see :mod:`studies.names`) and ``--storage``."""
    parser.add_argument("--study", metavar="NAME", help=f"{what} (default: {DEFAULT_STUDY})")
    add_storage_option(parser)


def chosen_study(args) -> str:
    """``--study``, or the default study; ``search.cli`` names a default taken on stderr once the
    command has run (an error stays the one line it is)."""
    if args.study is not None:
        return args.study
    from studies.storage import latest_study, list_studies

    name = latest_study(list_studies(args.storage)).name
    args.default_note = f"study {name} (the default: {DEFAULT_STUDY}; --study NAME for another)"
    return name
