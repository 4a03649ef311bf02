"""``search prune --study S [--keep front|knee] [--vacuum]``: keep the models of the front only.

Deletes the stored .tflite artifacts and preview images of the study's finished trials off its
Pareto front (``--keep knee``: all but the knee's). The trials themselves, their figures and
latency measurements stay, so status, the dashboard and the report still show them; exporting a
pruned trial needs ``search export --trial N --retrain-epochs E``. SQLite keeps the freed pages in
the file until ``--vacuum`` gives them back (it rewrites the file: run it while no search writes).
"""

from search.commands.options import add_storage_option
from studies.names import printable


def register(subparsers):
    parser = subparsers.add_parser("prune", help="delete the stored models of trials off the front", description=__doc__)
    parser.add_argument("--study", metavar="NAME", required=True, help="the study to prune (see 'search studies')")
    add_storage_option(parser)
    parser.add_argument("--keep", choices=("front", "knee"), default="front", help="whose models stay (default front)")
    parser.add_argument("--vacuum", action="store_true", help="then give the freed space back to the file system")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    parser.set_defaults(run=run)


def run(args) -> int:
    from studies.space import format_bytes, prune
    from studies.storage import load_study, open_storage
    from studies.store import ResultStore

    load_study(args.storage, args.study)  # read-only first: a missing file or study is named, nothing is created
    study = load_study(open_storage(args.storage), args.study)
    with ResultStore(args.storage) as store:
        before = store.database_bytes()
        done = prune(study, store, args.keep, dry_run=args.dry_run)
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} the models of {len(done.dropped)} trial(s) of {printable(study.study_name)} "
              f"({format_bytes(done.freed)}); kept {len(done.kept)} ({args.keep}): "
              + ", ".join(f"#{n}" for n in done.kept))
        if args.vacuum and not args.dry_run:
            store.vacuum()
            after = store.database_bytes()
            if before and after:
                print(f"vacuumed: {format_bytes(before['total'])} -> {format_bytes(after['total'])}")
        elif done.dropped and not args.dry_run and before and "free" in before:
            print("the file keeps that space as free pages until 'search prune --vacuum'")
    return 0
