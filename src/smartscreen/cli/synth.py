"""``smartscreen synth --out DIR --count N --seed S [--recipe FILE] [--split NAME] [--workers K]``."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "simulate dual-energy parcel scans: raw .npz, pseudo-colour PNG, YOLO labels, metadata and data.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--count", type=int, required=True, help="number of parcels")
    parser.add_argument("--seed", type=int, default=0, help="seed; the same seed and recipe give byte-identical files")
    parser.add_argument(
        "--recipe", type=Path, default=None, help="recipe YAML (datasets/synth-*.yaml); default: built-in"
    )
    parser.add_argument("--split", default=None, help="split name recorded in the metadata (overrides the recipe)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (output is identical for any count)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from smartscreen.errors import ConfigError
    from smartscreen.imaging.synth import Recipe, load_recipe, write_dataset

    if args.count < 0:
        raise ConfigError(f"--count must be >= 0, got {args.count}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    recipe = load_recipe(args.recipe) if args.recipe else Recipe()
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    ids = write_dataset(
        args.out, args.count, args.seed, recipe, split=args.split, progress=not args.no_progress, workers=args.workers
    )
    print(
        f"wrote {len(ids)} parcel(s) to {args.out} (recipe {recipe.name}, seed {args.seed}); data.yaml at {args.out / 'data.yaml'}"
    )
    return 0
