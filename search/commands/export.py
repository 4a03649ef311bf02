"""``search export``: write a trial's .tflite byte for byte, and a JSON sidecar beside it (same stem).

Choose the trial by number (--trial N) or by a rule (--pick): knee, max-dice, min-latency,
min-size, or conditions and one goal such as "dice>=0.8,min:latency" or "latency<=20,max:dice".
When the study has confirmed trials ('search confirm'), --pick chooses among their mean figures over
seeds and writes the best seed's confirmed model; the sidecar's "figures" says which figures it carries.

With --retrain-epochs E the trial's spec is trained again for E epochs on all the data (the
study's, or --data), converted with the same quant settings and measured again (Dice, latency on
the study's device or --device) before it is written; the sidecar keeps the search-time metrics
and the final ones ("final"). That Dice is on images the model saw in training: a sanity figure.
"""

import json

from search.commands.options import add_study_options, chosen_study
from studies.names import printable


def register(subparsers):
    parser = subparsers.add_parser("export", help="export a trial's .tflite and its JSON sidecar", description=__doc__)
    add_study_options(parser, "study to export from")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, metavar="N", help="the trial number to export")
    which.add_argument("--pick", metavar="RULE", help='knee | max-dice | min-latency | min-size | e.g. "dice>=0.8,min:latency"')
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the .tflite to write; the sidecar is FILE with .json")
    parser.add_argument("--json", action="store_true", help="print the sidecar instead of a summary line")
    parser.add_argument("--force", action="store_true", help="replace FILE or FILE.json even if nas-lite did not write them")
    retrain = parser.add_argument_group("retraining before export")
    retrain.add_argument("--retrain-epochs", type=int, metavar="E",
                         help="train the spec again for E epochs on all the data, convert and measure it again")
    retrain.add_argument("--data", metavar="PATH", help="with --retrain-epochs: 'synthetic' or a folder with images/ and masks/ (default: the study's)")
    retrain.add_argument("--device", action="append", metavar="URL",
                         help="with --retrain-epochs: measure on this Pi agent (repeatable; default: the study's devices)")
    retrain.add_argument("--device-token", metavar="TOKEN", help="the agents' token (or set NAS_LITE_DEVICE_TOKEN)")
    retrain.add_argument("--threads", type=int, metavar="N", help="with --retrain-epochs: LiteRT threads (default: the study's)")
    parser.set_defaults(run=run)


def run(args):
    from search import __version__
    from studies.export import check_output, export
    from studies.metrics import format_value
    from studies.store import ResultStore
    from studies.storage import load_study

    check_output(args.output, args.force)  # before opening the database: fail fast on a bad -o
    _check_retrain_options(args)
    study = load_study(args.storage, chosen_study(args))
    retrain = _retrain(args, study) if args.retrain_epochs is not None else None
    with ResultStore(args.storage, create=False) as store:
        done = export(study, store, args.output, trial=args.trial, pick=args.pick, version=__version__, retrain=retrain, force=args.force)
    if args.json:
        print(done.sidecar.read_text(), end="")
        return 0
    values = ", ".join(format_value(m, done.point.values.get(m)) for m in ("dice", "latency_ms", "size_kb"))
    how = f" (pick {done.rule})" if done.rule else ""
    print(f"exported trial {done.point.number}{how} of study {printable(study.study_name)}: {done.point.summary}; {values}")
    if done.confirmed is not None:
        chosen = done.confirmed
        print(f"  picked among confirmed figures: mean {chosen.dice_split} Dice {chosen.mean(chosen.dice_key):.3f} "
              f"± {chosen.std(chosen.dice_key):.3f} over {len(chosen.seeds)} seed(s) at {chosen.epochs} epochs; "
              f"the model of seed {chosen.best_seed}")
    if args.retrain_epochs is not None:
        final = json.loads(done.sidecar.read_text())["final"]
        values = ", ".join(format_value(m, final.get(m)) for m in ("dice", "latency_ms", "size_kb"))
        print(f"  retrained for {final['epochs']} epoch(s) on {final['train_images']} images: {values} "
              f"(Dice on images seen in training)")
    print(f"  {done.model} sha256 {done.sha256}")
    print(f"  {done.sidecar}")
    return 0


def _check_retrain_options(args):
    """Options that only make sense with --retrain-epochs, and its own range: before any work."""
    if args.retrain_epochs is None:
        given = [flag for flag, value in (("--data", args.data), ("--device", args.device),
                                          ("--device-token", args.device_token), ("--threads", args.threads)) if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: used only when retraining; add --retrain-epochs E or drop them")
        return
    if args.retrain_epochs < 1:
        raise ValueError(f"--retrain-epochs: must be at least 1, got {args.retrain_epochs}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads: must be at least 1, got {args.threads}")
    if args.data is not None and args.data != "synthetic":
        from pathlib import Path

        if not Path(args.data).is_dir():
            raise FileNotFoundError(f"--data {args.data}: no such folder; give a folder with images/ and masks/, or 'synthetic'")


def _retrain(args, study):
    from search.retrain import make_retrain, study_config

    return make_retrain(
        study_config(study, args.storage), args.retrain_epochs, data=args.data, devices=args.device,
        device_token=args.device_token, threads=args.threads, quiet_native=not getattr(args, "debug", False),
    )
