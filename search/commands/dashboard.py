"""``search dashboard``: Pareto fronts, trials and models of a study in the browser (local, read-only)."""

from __future__ import annotations

from search.commands.options import add_study_options



def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve the Pareto dashboard on a local web page",
        description="Serve a read-only web page with the study's Pareto fronts, trials and models. "
        "It works offline and refreshes while a search runs.",
    )
    add_study_options(parser, "study to open first")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; the page has no login)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from studies.web import serve

    serve(args.storage, study=args.study, host=args.host, port=args.port)
    return 0
