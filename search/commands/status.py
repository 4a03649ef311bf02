"""``search status``: trials by state, the Pareto front as a table, hypervolume, time spent and overhead."""

from search.commands.options import add_study_options, chosen_study


def register(subparsers):
    parser = subparsers.add_parser("status", help="show a study: trials, Pareto front, hypervolume, time", description=__doc__)
    add_study_options(parser, "study to show")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args):
    import json

    from studies.space import format_space, study_space
    from studies.status import format_status, study_status
    from studies.storage import load_study
    from studies.store import ResultStore

    study = load_study(args.storage, chosen_study(args))
    status = study_status(study)
    with ResultStore(args.storage, create=False) as store:
        space = study_space(store, study)
    if args.json:
        print(json.dumps({**status.to_dict(), "space": space}, indent=2))
    else:
        print(format_status(status) + "\n" + format_space(space))
    return 0
