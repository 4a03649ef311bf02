"""``search device calibrate``: time generated candidates on a device (``--device URL`` of a Pi
agent; ``--device local`` or none: this machine) and fit its latency model, kept in the database
keyed by the device's name; ``search device show``: the stored models.

The model predicts a ``.tflite``'s latency from its ops alone (``evaluators/latency_model.py``).
Local calibration times the CPU time of one LiteRT thread (steady on a busy machine); a board is
timed on the wall clock with 4 threads, as ``search start --device`` does, unless told otherwise.
"""

from __future__ import annotations

import json
import sys

from search.commands.bench import add_device_options, device_from
from search.commands.options import add_storage_option
from search.options import latency_defaults, positive_int


def register(subparsers):
    parser = subparsers.add_parser("device", help="calibrate a device's latency model, list stored ones", description=__doc__)
    actions = parser.add_subparsers(dest="device_action", metavar="ACTION", required=True)
    calibrate = actions.add_parser("calibrate", help="time N generated candidates and fit a latency model", description=__doc__)
    add_device_options(calibrate)
    calibrate.add_argument("--models", type=positive_int, default=50, help="candidates to time (default %(default)s; at least 5)")
    calibrate.add_argument("--image-size", type=positive_int, default=128, help="input size of the candidates (default %(default)s)")
    calibrate.add_argument("--seed", type=int, default=0, help="seeds the candidates and the held-out fifth")
    calibrate.add_argument("--clock", choices=("wall", "cpu"), help="default: cpu here with 1 thread, wall on a board")
    calibrate.add_argument("--runs", type=positive_int, default=50, help="timed runs per model, at least (default %(default)s)")
    calibrate.add_argument("--min-seconds", type=float, default=1.0, help="time each model this long, at least (default %(default)s)")
    add_storage_option(calibrate)
    calibrate.set_defaults(run=run_calibrate)
    show = actions.add_parser("show", help="list the stored latency models", description=__doc__)
    add_storage_option(show)
    show.add_argument("--json", action="store_true", help="print every stored model as JSON")
    show.set_defaults(run=run_show)


def protocol_from(args):
    from evaluators.runtime import Protocol

    clock, threads = latency_defaults(args.clock, args.threads, local=not args.devices)
    return Protocol(runs=args.runs, min_seconds=args.min_seconds, threads=threads, clock=clock)


def run_calibrate(args):
    from search.calibrate import check_image_size

    if args.models < 5:
        raise ValueError(f"--models: {args.models} is too few; time at least 5 (a fifth is held out to check the fit)")
    check_image_size(args.image_size)
    args.devices = [url for url in args.devices or () if url != "local"] or None
    protocol = protocol_from(args)
    device = device_from(args)

    from search.calibrate import calibration_specs, evaluate, save_model
    from studies.store import ResultStore

    store = ResultStore(args.storage)
    samples = measure_all(device, store, calibration_specs(args.models, args.image_size, args.seed), protocol)
    about = {"device": {"name": device.name, **device.info()}, "protocol": protocol.to_dict()}
    model = evaluate(samples, args.seed, about)
    save_model(store, device.name, model)
    print(describe(device.name, model))
    print(f"stored in {args.storage} for device {device.name!r}; list with: search device show")


def measure_all(device, store, specs, protocol) -> list[dict]:
    """Every spec's sample, measured now or read back from an earlier, interrupted calibration."""
    from tqdm import tqdm

    from search.calibrate import measure_sample, sample_key, save_sample, stored_samples

    known = stored_samples(store, device.name)
    samples = []
    with tqdm(specs, desc=f"calibrating {device.name}", unit="model", file=sys.stderr, dynamic_ncols=True) as bar:
        for spec in bar:
            key = sample_key(spec, protocol.to_dict())
            if key not in known:
                try:
                    known[key] = measure_sample(spec, device, protocol)
                except ValueError as error:  # a candidate the runtime rejects: skip it, keep the others
                    bar.write(f"skipped {spec.summary}: {error}")
                    continue
                save_sample(store, device.name, key, known[key])
            samples.append(known[key])
            bar.set_postfix_str(f"{spec.summary}: {known[key]['stats']['median_ms']:.2f} ms")
    return samples


def describe(name: str, model) -> str:
    """The held-out accuracy against the baselines, in a few lines."""
    accuracy = model.accuracy
    lines = [f"latency model of {name}: {model.calibration_models} models; on the held-out fifth "
             f"({accuracy['held_out']['models']} models):"]
    for label, key in (("kernel model", "held_out"), ("MACs only", "macs_baseline"), ("params only", "params_baseline")):
        figures = accuracy[key]
        rank = "n/a" if figures["spearman"] is None else f"{figures['spearman']:.3f}"
        lines.append(f"  {label:<13} Spearman {rank:>6}   median error {figures['mape']:6.1%}   "
                     f"within +-10% {figures['within_10']:6.1%}")
    return "\n".join(lines)


def run_show(args):
    from search.calibrate import stored_models
    from studies.store import ResultStore

    models = stored_models(ResultStore(args.storage, create=False))
    if args.json:
        for name, created, model in models:
            print(json.dumps({"device": name, "created": created, "model": json.loads(model.to_json())}))
        return
    if not models:
        print(f"no latency models in {args.storage}; make one with: search device calibrate --device URL|local")
        return
    for name, created, model in models:
        cpu = model.device.get("cpu", "")
        protocol = model.protocol
        print(f"{created}  {name}  ({cpu}; {protocol.get('threads')} thread(s), {protocol.get('clock')} clock)")
        print("  " + describe(name, model).replace("\n", "\n  "))
