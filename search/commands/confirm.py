"""``search confirm``: retrain chosen trials and the unet reference for E epochs with S seeds on the
study's training split, score validation and held-out test Dice, time them again on the study's
device, and store every run. Run the same command again to continue it (after a kill too); several
--workers (or machines sharing the storage) split the runs. 'search status' shows the confirmed
front, 'search export --pick' chooses among its figures."""

from search.commands.options import add_study_options, chosen_study, csv_of, positive_int


def register(subparsers):
    parser = subparsers.add_parser("confirm", help="retrain chosen trials with several seeds, score held-out Dice",
                                   description=__doc__)
    add_study_options(parser, "study to confirm")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--front", action="store_true", help="the trials on the search's Pareto front (the default)")
    which.add_argument("--top", type=positive_int, metavar="K", help="the best K trials (non-dominated rank, then Dice)")
    which.add_argument("--trials", type=csv_of(int), metavar="N,N", help="these trial numbers, e.g. 3,17")
    parser.add_argument("--epochs", type=positive_int, metavar="E", help="training epochs per run (default: 4 x the study's)")
    parser.add_argument("--seeds", type=positive_int, default=3, metavar="S", help="seeds per trial (default 3)")
    parser.add_argument("--data-limit", type=positive_int, metavar="N", help="use at most N image pairs (default: the study's)")
    parser.add_argument("--test-fraction", type=float, default=0.2, metavar="F",
                        help="for studies without a test split: the share of images confirm holds out (default 0.2)")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N", help="worker processes (default 1)")
    parser.add_argument("--device-token", metavar="TOKEN", help="the study's agents' token (or set NAS_LITE_DEVICE_TOKEN)")
    parser.set_defaults(run=run)


def run(args):
    import os
    import sys

    from search import confirm, confirm_workers
    from search.retrain import study_config
    from studies.confirmed import format_confirmed, load_confirmed
    from studies.storage import load_study

    study = load_study(args.storage, chosen_study(args))
    config = study_config(study, args.storage)
    subjects = confirm.trial_subjects(study, front=args.front, top=args.top, trials=args.trials)
    plan = confirm.make_plan(study, config, subjects, epochs=args.epochs or 4 * config.epochs, seeds=args.seeds,
                             data_limit=args.data_limit, test_fraction=args.test_fraction)
    data = confirm.load_data(plan, config.image_size, config.channels)
    print(f"confirm {len(plan.subjects) - 1} trial(s) and the {confirm.REFERENCE} reference of study {study.study_name}: "
          f"{plan.epochs} epochs x {len(plan.seeds)} seed(s) ({', '.join(map(str, plan.seeds))}), "
          f"{len(plan.runs)} runs; {data.describe()}", file=sys.stderr)
    print(f"test split: {confirm.test_split_note(plan, data)}", file=sys.stderr)
    confirm_workers.confirm(plan, args.workers, args.device_token or os.environ.get("NAS_LITE_DEVICE_TOKEN"))
    print(format_confirmed(load_confirmed(study)))
    return 0
