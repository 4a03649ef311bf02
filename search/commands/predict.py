"""``search predict model.tflite IMAGE... -o out/``: segment images with a TFLite model, as the Pi would.

Each image (any size; gray, RGB or RGBA) is resized to the model's input, run in LiteRT, and the
mask is resized back: ``<stem>_mask.png`` (0/255) and ``<stem>_overlay.png`` (the image with the
mask in red) go to the output folder.
"""

from __future__ import annotations

from pathlib import Path

from search.commands.options import positive_int

OVERLAY_COLOUR = (255, 40, 40)
OVERLAY_ALPHA = 0.5


def register(subparsers):
    parser = subparsers.add_parser("predict", help="write masks and overlays for images with a .tflite model",
                                   description=__doc__)
    parser.add_argument("model", type=Path, help="the .tflite model (e.g. from 'search export')")
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files (png, jpg, ...)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="an existing folder for the results")
    parser.add_argument("--threshold", type=_probability, default=0.5, help="mask threshold on the probability (default 0.5)")
    parser.add_argument("--threads", type=positive_int, default=2, help="LiteRT threads (default 2)")
    parser.set_defaults(run=run)


def _probability(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def run(args):
    import sys

    from tqdm import tqdm

    model_bytes = _read_model(args.model)
    _check_output(args.output)
    missing = [str(path) for path in args.images if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"no such image: {', '.join(missing[:3])}" + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    runner = _open_runner(model_bytes, args.threads, args.debug)
    _check_segmentation(runner, args.model)
    progress = tqdm(args.images, desc="predicting", unit="img", file=sys.stderr, leave=False, disable=len(args.images) < 4 or None)
    for path in progress:
        mask_path, overlay_path = predict_file(runner, path, args.output, args.threshold)
        tqdm.write(f"{path} -> {mask_path.name}, {overlay_path.name}")
    return 0


def _read_model(path: Path) -> bytes:
    from evaluators.accuracy import check_tflite

    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    model_bytes = path.read_bytes()
    check_tflite(model_bytes, str(path))
    return model_bytes


def _open_runner(model_bytes: bytes, threads: int, debug: bool):
    """LiteRT's interpreter; its native lines ("INFO: Created TensorFlow Lite XNNPACK delegate") are
    kept off the terminal unless --debug, so an error is the only line a user sees."""
    import sys

    from evaluators.accuracy import interpreter
    from search.native_log import native_stderr_to_log

    with native_stderr_to_log(not debug, sys.stderr, "predict"):
        try:
            return interpreter(model_bytes, threads)
        except ValueError as error:
            refused = error  # raised once LiteRT's own lines are off the terminal, not named as a log
    raise refused


def _check_segmentation(runner, path: Path) -> None:
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    image, mask = [int(n) for n in inputs[0]["shape"]], [int(n) for n in outputs[0]["shape"]]
    if len(inputs) != 1 or len(image) != 4 or image[-1] not in (1, 3) or len(mask) != 4 or mask[-1] != 1:
        raise ValueError(
            f"{path} is not a segmentation model with one image in and one mask out "
            f"(input {image}, output {mask}"
            + (f", and {len(inputs) - 1} more input(s)" if len(inputs) > 1 else "") + "); use a model exported by 'search export'"
        )


def _check_output(folder: Path) -> None:
    if not folder.exists():
        raise FileNotFoundError(f"output folder {folder} does not exist; create it first (mkdir -p {folder})")
    if not folder.is_dir():
        raise NotADirectoryError(f"output {folder} is not a folder")


def predict_file(runner, path: Path, output: Path, threshold: float = 0.5) -> tuple[Path, Path]:
    """Segment one image file with a LiteRT interpreter (``evaluators.accuracy.interpreter``).

    Returns the paths of the mask and the overlay written to ``output``.
    """
    import numpy as np
    from PIL import Image

    from evaluators.accuracy import input_shape, run_interpreter, to_pil
    from evaluators.data import read_image

    height, width, channels = input_shape(runner)
    original = read_image(path, None, channels=3)  # full size, for the overlay
    model_input = _model_input(read_image(path, None, channels=channels), height, width)
    probability = run_interpreter(runner, model_input[None])[0, ..., 0]
    full_size = (original.shape[1], original.shape[0])
    probability = np.asarray(Image.fromarray(probability).resize(full_size, Image.Resampling.BILINEAR))
    mask = probability > threshold
    mask_path, overlay_path = output / f"{path.stem}_mask.png", output / f"{path.stem}_overlay.png"
    to_pil(mask).save(mask_path)
    to_pil(_overlay(original, mask)).save(overlay_path)
    return mask_path, overlay_path


def _model_input(image, height: int, width: int):
    """Resize a float (h, w, c) image to the model's input, bilinear, per channel."""
    import numpy as np
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    planes = [np.asarray(Image.fromarray(image[..., c]).resize((width, height), Image.Resampling.BILINEAR)) for c in range(image.shape[-1])]
    return np.stack(planes, axis=-1).astype(np.float32)


def _overlay(image, mask):
    import numpy as np

    colour = np.asarray(OVERLAY_COLOUR, np.float32) / 255
    blended = image * (1 - OVERLAY_ALPHA) + colour * OVERLAY_ALPHA
    return np.where(mask[..., None], blended, image)
