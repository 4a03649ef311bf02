"""``search report``: one self-contained HTML file with a study's Pareto figures and front table."""

from __future__ import annotations

import sys

from search.commands.options import add_study_options, chosen_study


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of a study",
        description="Write one HTML file with the study's Pareto figures and front table; plotly.js is "
        "inlined, so it opens in a browser without a server or network access.",
    )
    add_study_options(parser, "study to report")
    parser.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from studies.report import write_report

    path = write_report(args.storage, args.output, study=chosen_study(args))
    print(f"wrote {path}", file=sys.stderr)
    return 0
