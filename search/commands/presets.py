"""``search presets``: the hand-designed variants with parameters, MACs and TFLite size per quant mode."""

from search.options import add_option, csv_of

DEFAULT_MODES = ("float32", "dynamic", "float16", "int8")


def register(subparsers):
    parser = subparsers.add_parser("presets", help="list the hand-designed presets and their costs", description=__doc__)
    add_option(parser, "image_size", concrete=True, default=128)
    add_option(parser, "channels", concrete=True)
    add_option(parser, "quant_modes", concrete=True, default=DEFAULT_MODES, help="quant modes to convert")
    parser.add_argument("--names", type=csv_of(str), metavar="P,P", help="only these presets")
    parser.set_defaults(run=run)


def run(args):
    import sys

    from search.native_log import native_stderr_to_log
    from space.presets import FLOAT_PRESETS, preset

    names = args.names or tuple(FLOAT_PRESETS)
    specs = [preset(name, args.image_size, args.channels) for name in names]
    modes = [_quant(choice) for choice in args.quant_modes]  # bad input fails before TensorFlow loads
    with native_stderr_to_log(not args.debug, sys.stderr, "presets") as err:  # TensorFlow's import chatter too
        _table(names, specs, modes, err)


def _quant(choice: str):
    """The settings of a ``--quant-modes`` name (``int8-io``: int8 with int8 input and output)."""
    from space.quant import parse_quant_choice
    from space.spec import QuantSpec

    mode, io_type = parse_quant_choice(choice)
    return QuantSpec(mode, calibration_images=4, io_type=io_type)


def _table(names, specs, modes, err):
    import numpy as np
    from tqdm import tqdm

    from space.convert import to_tflite
    from space.model import build, static_costs
    from space.quant import quant_choice
    from studies.metrics import size_kb

    shape = (4, specs[0].input_size, specs[0].input_size, specs[0].input_channels)
    calibration = np.random.default_rng(0).uniform(0, 1, shape).astype("float32")
    width = max(len(name) for name in ("preset", *names))
    print(f"{'preset':<{width}} {'params':>10} {'MMACs':>9}  " + "  ".join(f"{quant_choice(m.mode, m.io_type) + ' KB':>12}" for m in modes), flush=True)
    for name, spec in tqdm(list(zip(names, specs)), desc="converting", file=err, leave=False):
        model = build(spec)
        costs = static_costs(model)
        sizes = [size_kb(len(to_tflite(model, mode, calibration))) for mode in modes]
        tqdm.write(f"{name:<{width}} {costs.params:>10,} {costs.macs / 1e6:>9.1f}  " + "  ".join(f"{s:>12.1f}" for s in sizes))
