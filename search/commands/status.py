"""``search status``: trials by state, the Pareto front as a table, hypervolume, time spent and overhead."""

DEFAULT_STORAGE = "sqlite:///studies.db"  # studies.storage.DEFAULT_URL (not imported: keeps --help fast)


def register(subparsers):
    parser = subparsers.add_parser("status", help="show a study: trials, Pareto front, hypervolume, time", description=__doc__)
    parser.add_argument("--study", metavar="NAME", help="study name (default: the most recent one in the storage)")
    parser.add_argument("--storage", metavar="URL", default=DEFAULT_STORAGE, help=f"database URL (default {DEFAULT_STORAGE})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args):
    import json

    from studies.status import format_status, study_status
    from studies.storage import load_study

    status = study_status(load_study(args.storage, args.study))
    print(json.dumps(status.to_dict(), indent=2) if args.json else format_status(status))
    return 0
