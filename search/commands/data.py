"""``search data write -o FOLDER``: the built-in generated dataset as image files.

Writes ``FOLDER/images/NNNN.png`` and ``FOLDER/masks/NNNN.png`` (0 or 255), the layout
``search start --data FOLDER`` reads, and images to try ``search predict`` on. The pairs are those
``--data synthetic`` generates for the same seed and size.
"""

from __future__ import annotations

from pathlib import Path

from search.options import add_option, positive_int


def register(subparsers):
    parser = subparsers.add_parser("data", help="write the built-in dataset out as image files", description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    write = actions.add_parser("write", help="write images/ and masks/ PNGs of the generated dataset", description=__doc__)
    write.add_argument("-o", "--output", type=Path, required=True, metavar="FOLDER",
                       help="the folder to write images/ and masks/ into (made if missing)")
    write.add_argument("--count", type=positive_int, default=20, help="image pairs to write (default 20)")
    add_option(write, "image_size", concrete=True, default=64)
    add_option(write, "channels", concrete=True)
    add_option(write, "seed", concrete=True)
    write.set_defaults(run=run)


def run(args) -> int:
    import sys

    from tqdm import tqdm

    from evaluators.accuracy import to_pil
    from evaluators.data import synthetic

    images_dir, masks_dir = _prepare(args.output)
    images, masks = synthetic(args.count, args.image_size, args.channels, args.seed, progress=True)
    width = max(4, len(str(args.count - 1)))
    for index in tqdm(range(args.count), desc="writing", unit="pair", file=sys.stderr, leave=False, disable=None):
        name = f"{index:0{width}d}.png"
        to_pil(images[index]).save(images_dir / name)
        to_pil(masks[index]).save(masks_dir / name)
    print(f"wrote {args.count} pairs ({args.image_size}x{args.image_size}, seed {args.seed}) to {images_dir} and {masks_dir}")
    print(f"next: search predict model.tflite {images_dir}/*.png -o out/ | search start --data {args.output}")
    return 0


def _prepare(folder: Path) -> tuple[Path, Path]:
    """``images/`` and ``masks/`` in ``folder``, made if missing; files already there are never overwritten."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"-o {folder} is a file; give a folder to write images/ and masks/ into")
    parts = folder / "images", folder / "masks"
    taken = [part for part in parts if part.is_dir() and any(part.iterdir())]
    if taken:
        raise FileExistsError(f"{taken[0]} already holds files; choose an empty or new -o folder so nothing is overwritten")
    for part in parts:
        part.mkdir(parents=True, exist_ok=True)
    return parts
