"""``search export``: write a trial's .tflite byte for byte, and a JSON sidecar beside it (same stem).

Choose the trial by number (--trial N) or by a rule (--pick): knee, max-dice, min-latency,
min-size, or conditions and one goal such as "dice>=0.8,min:latency" or "latency<=20,max:dice".
"""

DEFAULT_STORAGE = "sqlite:///studies.db"  # studies.storage.DEFAULT_URL (not imported: keeps --help fast)


def register(subparsers):
    parser = subparsers.add_parser("export", help="export a trial's .tflite and its JSON sidecar", description=__doc__)
    parser.add_argument("--study", metavar="NAME", help="study name (default: the most recent one in the storage)")
    parser.add_argument("--storage", metavar="URL", default=DEFAULT_STORAGE, help=f"database URL (default {DEFAULT_STORAGE})")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, metavar="N", help="the trial number to export")
    which.add_argument("--pick", metavar="RULE", help='knee | max-dice | min-latency | min-size | e.g. "dice>=0.8,min:latency"')
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the .tflite to write; the sidecar is FILE with .json")
    parser.add_argument("--json", action="store_true", help="print the sidecar instead of a summary line")
    # --retrain-epochs E [--data PATH] plugs in here: build a retrain(spec, point) -> (tflite, metrics)
    # function from evaluators and pass it to studies.export.export(retrain=...).
    parser.set_defaults(run=run)


def run(args):
    from search import __version__
    from studies.export import check_output, export
    from studies.pareto import format_value
    from studies.store import ResultStore
    from studies.storage import load_study

    check_output(args.output)  # before opening the database: fail fast on a bad -o
    study = load_study(args.storage, args.study)
    with ResultStore(args.storage, create=False) as store:
        done = export(study, store, args.output, trial=args.trial, pick=args.pick, version=__version__)
    if args.json:
        print(done.sidecar.read_text(), end="")
        return 0
    values = ", ".join(format_value(m, done.point.values.get(m)) for m in ("dice", "latency_ms", "size_kb"))
    how = f" (pick {done.rule})" if done.rule else ""
    print(f"exported trial {done.point.number}{how} of study {study.study_name}: {done.point.summary}; {values}")
    print(f"  {done.model} sha256 {done.sha256}")
    print(f"  {done.sidecar}")
    return 0
