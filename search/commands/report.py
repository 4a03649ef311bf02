"""``search report``: one self-contained HTML file with a study's Pareto figures and front table."""

from __future__ import annotations

import sys

DEFAULT_STORAGE = "sqlite:///studies.db"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of a study",
        description="Write one HTML file with the study's Pareto figures and front table; plotly.js is "
        "inlined, so it opens in a browser without a server or network access.",
    )
    parser.add_argument("--study", help="study to report (default: the most recently active)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"database URL (default {DEFAULT_STORAGE})")
    parser.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from studies.report import write_report

    path = write_report(args.storage, args.output, study=args.study)
    print(f"wrote {path}", file=sys.stderr)
    return 0
