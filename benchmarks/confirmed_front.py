"""Does the search front hold up when its trials are retrained longer, with several seeds, and scored
on held-out test images?

    python benchmarks/confirmed_front.py --data ../shared/datasets/dsb2018_nuclei \\
        [--image-size 128] [--budget 50] [--search-epochs 6] [--epochs 24] [--seeds 3] [--workers 1] \\
        [--search-input-size 64,96,128]

A search (``search start``), then ``search confirm --front --seeds S`` on the same study, both
through the real command line; each resumes by itself, so running the script again continues
an interrupted run. Prints the confirmed front (test Dice mean and std over seeds beside the
search-time Dice), the unet reference, the best confirmed test Dice at <= 1/5 and <= 1/10 of
unet's latency, and the Spearman correlation between search-time Dice and confirmed test Dice
over the confirmed trials (the search front). Writes the figures as JSON under --out.

A tiny run that proves it end to end (minutes, built-in data):

    python benchmarks/confirmed_front.py --data synthetic --image-size 32 --budget 4 --search-epochs 1 \\
        --epochs 1 --seeds 2 --data-limit 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a folder with images/ and masks/ (dsb2018), or synthetic")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--search-epochs", type=int, default=6, help="epochs per search trial")
    parser.add_argument("--epochs", type=int, default=24, help="epochs per confirming run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-limit", type=int)
    parser.add_argument("--search-input-size", metavar="N,N", help="search the input resolution too (search start's option)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-clock", default="cpu", choices=("wall", "cpu"),
                        help="cpu (default here): one thread's CPU time, steady while other work shares the machine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    storage, name = f"sqlite:///{(args.out / 'confirmed_front.db').resolve()}", _name(args)
    started = time.time()
    _search(args, storage, name)
    _cli("confirm", "--storage", storage, "--study", name, "--front", "--epochs", args.epochs, "--seeds", args.seeds,
         "--workers", args.workers)
    summary = summarise(storage, name)
    summary["wall_seconds"] = round(time.time() - started, 1)
    print(render(summary))
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nfigures: {path}")


def _name(args) -> str:
    limit = f"-n{args.data_limit}" if args.data_limit else ""
    sizes = f"-in{args.search_input_size.replace(',', '.')}" if args.search_input_size else ""
    return (f"confirmed-{Path(args.data).name}-{args.image_size}-b{args.budget}-e{args.search_epochs}{limit}{sizes}"
            f"-s{args.seed}")


def _search(args, storage: str, name: str) -> None:
    data = args.data if args.data == "synthetic" else str(Path(args.data).resolve())
    limit = ("--data-limit", args.data_limit) if args.data_limit else ()
    sizes = ("--search-input-size", args.search_input_size) if args.search_input_size else ()
    _cli("start", "--storage", storage, "--study", name, "--data", data, "--image-size", args.image_size,
         "--budget", args.budget, "--epochs", args.search_epochs, "--rungs", "off", "--threads", args.threads,
         "--latency-clock", args.latency_clock, "--seed", args.seed, "--quiet", *limit, *sizes)


def _cli(*arguments) -> None:
    command = [sys.executable, "-m", "search", *map(str, arguments)]
    print("$ search " + " ".join(map(str, arguments)), file=sys.stderr, flush=True)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if subprocess.run(command, env=environment).returncode != 0:
        sys.exit(f"search {arguments[0]} failed; run the same command again to continue it")


def summarise(storage: str, name: str) -> dict:
    """The confirmed front, the unet reference, the best test Dice under latency budgets, Spearman."""
    from studies.confirmed import confirmed_front, load_confirmed, reference, spearman
    from studies.storage import load_study

    items = load_confirmed(load_study(storage, name))
    trials, unet = [c for c in items if c.number is not None], reference(items)
    members = {c.subject for c in confirmed_front(items)}
    paired = [c for c in trials if c.search is not None and "dice" in c.search.values]
    return {
        "study": name,
        "front": [{**_row(c), "on_confirmed_front": c.subject in members} for c in trials],
        "unet": _row(unet) if unet else None,
        "best_at_fraction_of_unet": {f"1/{k}": _best_under(trials, unet, k) for k in (5, 10)},
        "best_at_fraction_of_unet_search_timing": {f"1/{k}": _best_under(trials, unet, k, _search_latency) for k in (5, 10)},
        "spearman_search_vs_confirmed": spearman([c.search.values["dice"] for c in paired],
                                                 [c.mean(c.dice_key) for c in paired]),
    }


def _row(item) -> dict:
    return {"trial": item.number, "summary": item.summary, "input_size": item.runs[0]["spec"]["input_size"],
            "epochs": item.epochs, "seeds": list(item.seeds),
            "search_dice": item.search.values.get("dice") if item.search else None,
            "search_latency_ms": _search_latency(item),
            "test_dice": item.mean("test_dice"), "test_dice_std": item.std("test_dice"),
            "val_dice": item.mean("dice"), "val_dice_std": item.std("dice"),
            "latency_ms": item.mean("latency_ms"), "latency_ms_std": item.std("latency_ms"), "size_kb": item.mean("size_kb")}


def _best_under(trials, unet, fraction: int, latency=lambda item: item.mean("latency_ms")) -> dict | None:
    """The confirmed trial with the best mean test Dice at no more than 1/fraction of unet's latency
    (``latency``: the confirmation's timings by default; :func:`_search_latency` for the search's)."""
    if unet is None or latency(unet) is None:
        return None
    budget = latency(unet) / fraction
    fast = [c for c in trials if latency(c) is not None and latency(c) <= budget and c.mean("test_dice") is not None]
    best = max(fast, key=lambda c: c.mean("test_dice"), default=None)
    return {"latency_budget_ms": budget, **(_row(best) if best else {"trial": None})}


def _search_latency(item) -> float | None:
    """The latency the search measured (a confirmation on a busy machine re-times slower)."""
    return item.search.values.get("latency_ms") if item.search else None


def render(summary: dict) -> str:
    def dice(row, key):
        return "-" if row.get(key) is None else f"{row[key]:.3f} ± {row[key + '_std']:.3f}"

    lines = [f"## Confirmed front of {summary['study']}", "",
             "| | trial | summary | input | search Dice | test Dice | val Dice | latency ms (search) | size KB | seeds |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = [*summary["front"], *([{**summary["unet"], "trial": "unet"}] if summary["unet"] else [])]
    for row in rows:
        search = "-" if row.get("search_dice") is None else f"{row['search_dice']:.3f}"
        timed = "" if row.get("search_latency_ms") is None else f" ({row['search_latency_ms']:.2f})"
        lines.append(f"| {'*' if row.get('on_confirmed_front') else ''} | {row['trial']} | {row['summary'].replace('|', chr(92) + '|')} | "
                     f"{row['input_size']} | {search} | {dice(row, 'test_dice')} | {dice(row, 'val_dice')} | {row['latency_ms']:.2f}{timed} | "
                     f"{row['size_kb']:.0f} | {len(row['seeds'])} |")
    lines.append("")
    for timing, key in (("", "best_at_fraction_of_unet"), (" by the search's timings", "best_at_fraction_of_unet_search_timing")):
        for fraction, best in summary[key].items():
            lines.append(f"best confirmed test Dice at <= {fraction} of unet's latency{timing}: " + _best_text(best))
    rho = summary["spearman_search_vs_confirmed"]
    lines.append(f"Spearman(search Dice, confirmed test Dice) over the front: {'-' if rho is None else f'{rho:.2f}'}")
    return "\n".join(lines)


def _best_text(best) -> str:
    if best is None:
        return "no unet reference"
    if best["trial"] is None:
        return f"({best['latency_budget_ms']:.2f} ms): none that fast"
    return (f"({best['latency_budget_ms']:.2f} ms): {best['test_dice']:.3f} ± {best['test_dice_std']:.3f}, "
            f"trial {best['trial']} ({best['latency_ms']:.2f} ms; {best['search_latency_ms']:.2f} in the search)")


if __name__ == "__main__":
    main()
