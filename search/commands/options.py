"""Argument types and option groups shared by several commands."""

from __future__ import annotations

import argparse

DEFAULT_STORAGE = "sqlite:///studies.db"  # studies.storage.DEFAULT_URL, not imported: keeps --help fast


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL", default=DEFAULT_STORAGE,
                        help=f"database URL (default {DEFAULT_STORAGE}; postgresql://USER:PW@HOST/DB)")


def add_study_options(parser: argparse.ArgumentParser, what: str = "study") -> None:
    """``--study`` (default: the study with the most recent trial) and ``--storage``."""
    parser.add_argument("--study", metavar="NAME", help=f"{what} (default: the most recently active study)")
    add_storage_option(parser)


def csv_of(kind=str):
    """``a,b,c`` -> tuple, each converted by ``kind``; a clear message for a bad item."""

    def parse(text: str):
        items = [item.strip() for item in text.split(",") if item.strip()]
        try:
            return tuple(kind(item) for item in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {kind.__name__}") from None

    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def add_space_options(parser: argparse.ArgumentParser) -> None:
    """Options that narrow the search space (see ``space.SearchSpace``)."""
    group = parser.add_argument_group("search space")
    group.add_argument("--block-kinds", type=csv_of(str), metavar="K,K", help="block kinds to search (default: all)")
    group.add_argument("--quant-modes", type=csv_of(str), metavar="M,M", help="quantization modes to search")
    group.add_argument("--depths", type=csv_of(int), metavar="D,D", help="encoder depths to search (3 to 5)")
    group.add_argument("--widths", type=csv_of(int), metavar="W,W", help="base widths to search (multiples of 4)")
    group.add_argument("--groups", type=csv_of(int), metavar="G,G", help="group counts for group/shuffle blocks")
    group.add_argument("--dilations", type=csv_of(int), metavar="R,R", help="dilation rates (1, 2, 4)")
    group.add_argument("--sparsities", type=csv_of(float), metavar="S,S", help="magnitude-pruning targets, e.g. 0,0.5,0.75")
    group.add_argument("--search-input-size", type=csv_of(int), metavar="N,N", help="search the input resolution too")


def space_from(options: dict):
    """A ``SearchSpace`` from parsed options (a plain dict of the names above); unset keep defaults."""
    from space.sampling import SearchSpace

    names = {
        "block_kinds": "block_kinds", "quant_modes": "quant_modes", "depths": "depths", "widths": "base_widths",
        "groups": "groups", "dilations": "dilations", "sparsities": "sparsities", "search_input_size": "input_sizes",
    }
    return SearchSpace(**{field: options[key] for key, field in names.items() if options.get(key) is not None})
