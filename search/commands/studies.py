"""``search studies``: the studies in a storage with their trial counts."""

from search.commands.options import add_storage_option


def register(subparsers):
    parser = subparsers.add_parser("studies", help="list the studies in a storage", description=__doc__)
    add_storage_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args):
    import json

    from studies.space import database_space, format_space
    from studies.status import format_studies
    from studies.storage import list_studies, shown
    from studies.store import ResultStore

    infos = list_studies(args.storage)
    if args.json:
        print(json.dumps([info.to_dict() for info in infos], indent=2))
        return 0
    print(format_studies(infos, shown(args.storage)))
    if infos:
        with ResultStore(args.storage, create=False) as store:
            space = database_space(store)
        print("\n" + format_space(space))
        if space["artifacts"] + space["previews"]:
            print("  to keep the models of the front only: search prune --study NAME [--keep front|knee] [--vacuum]")
    return 0
