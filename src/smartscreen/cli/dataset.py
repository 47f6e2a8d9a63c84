"""``smartscreen dataset convert|stats|merge|from-verdicts``: datasets for training and evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "convert public X-ray datasets to one YOLO dataset, show statistics, merge datasets, export operator verdicts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    conv = sub.add_parser(
        "convert",
        help="COCO / VOC / OPIXray-HiXray / YOLO / synth -> one YOLO dataset in the project taxonomy",
        description=(
            "Formats: coco (SOURCE = the JSON file, --images = image folder; PIDray, CLCXray), voc (SOURCE = XML folder; "
            "SIXray, EDS), opixray / hixray (SOURCE = annotation-text folder), yolo (SOURCE = data.yaml or its folder), "
            "synth (SOURCE = a 'smartscreen synth' output folder). Class maps: datasets/class-maps/*.yaml."
        ),
    )
    conv.add_argument("source", type=Path, help="annotation file or folder (see formats)")
    conv.add_argument("--format", required=True, choices=["coco", "voc", "opixray", "hixray", "yolo", "synth"])
    conv.add_argument("--images", type=Path, help="image folder (default: next to the annotations)")
    conv.add_argument("--class-map", type=Path, help="YAML class map (required for coco, voc, opixray, hixray)")
    conv.add_argument("--out", type=Path, required=True, help="output dataset folder")
    conv.add_argument(
        "--unknown",
        choices=["skip-image", "drop-box", "error"],
        default="skip-image",
        help="images holding a class that is not in the map (default: skip the image and report it)",
    )
    conv.add_argument("--split", default="", help="force a split (train/val/test) for every image")
    conv.add_argument("--val", type=float, default=0.1, help="validation fraction for images without a split")
    conv.add_argument("--test", type=float, default=0.0, help="test fraction for images without a split")
    conv.add_argument("--seed", type=int, default=0, help="seed of the hash-based split")

    stats = sub.add_parser("stats", help="counts per class, box sizes, negatives, a plot")
    stats.add_argument("data", type=Path, help="data.yaml (or its folder)")
    stats.add_argument("--plot", type=Path, help="PNG to write (default DATA_DIR/stats.png)")
    stats.add_argument("--json", type=Path, help="write the statistics as JSON")

    merge = sub.add_parser("merge", help="merge YOLO datasets (classes matched by name)")
    merge.add_argument("inputs", type=Path, nargs="+", help="data.yaml files (or their folders)")
    merge.add_argument("--out", type=Path, required=True)
    merge.add_argument("--class-map", type=Path, help="class map for the inputs' names (default: taxonomy names)")
    merge.add_argument("--unknown", choices=["skip-image", "drop-box", "error"], default="skip-image")
    merge.add_argument("--val", type=float, default=0.1)
    merge.add_argument("--seed", type=int, default=0)

    fv = sub.add_parser(
        "from-verdicts",
        help="operator verdicts in the audit journal -> YOLO dataset (confirmed threats + cleared alarms as negatives)",
    )
    fv.add_argument("--journal", required=True, help="journal URL (sqlite:///path.db or postgresql://...)")
    fv.add_argument("--images", type=Path, required=True, help="content-addressed image store root of that journal")
    fv.add_argument("--out", type=Path, required=True)
    fv.add_argument("--val", type=float, default=0.1)
    fv.add_argument("--seed", type=int, default=0)


def _data_yaml(path: Path) -> Path:
    return path if path.is_file() else path / "data.yaml"


def run(args: argparse.Namespace) -> int:
    from smartscreen.errors import DatasetError
    from smartscreen.training.classmap import ClassMap
    from smartscreen.training.writer import UnknownPolicy

    if args.action == "convert":
        from smartscreen.training.readers import read_dataset
        from smartscreen.training.writer import write_yolo_dataset

        if args.class_map is not None:
            class_map = ClassMap.from_file(args.class_map)
        elif args.format in ("yolo", "synth"):
            class_map = ClassMap.identity()
        else:
            raise DatasetError(
                f"--format {args.format} needs --class-map (maps for the public datasets are in datasets/class-maps/)"
            )
        result = read_dataset(args.format, args.source, images=args.images, split=args.split)
        report = write_yolo_dataset(
            result.images,
            args.out,
            class_map=class_map,
            unknown=UnknownPolicy(args.unknown),
            val_fraction=args.val,
            test_fraction=args.test,
            seed=args.seed,
            issues=result.issues,
            comment=f"converted by smartscreen dataset convert from {args.format} {args.source}",
        )
        print(report.summary())
        print(f"wrote {args.out / 'data.yaml'} and {args.out / 'conversion-report.json'}")
        return 0
    if args.action == "stats":
        from smartscreen.training.stats import dataset_stats, plot_stats

        data = _data_yaml(args.data)
        stats, raw = dataset_stats(data)
        print(stats.summary())
        if args.json:
            args.json.write_text(stats.to_json(), encoding="utf-8")
        plot = plot_stats(stats, raw, args.plot or data.parent / "stats.png")
        if plot:
            print(f"plot: {plot}")
        return 0
    if args.action == "merge":
        from smartscreen.training.merge import merge_datasets

        report = merge_datasets(
            [_data_yaml(p) for p in args.inputs],
            args.out,
            class_map=ClassMap.from_file(args.class_map) if args.class_map else None,
            unknown=UnknownPolicy(args.unknown),
            val_fraction=args.val,
            seed=args.seed,
        )
        print(report.summary())
        print(f"wrote {args.out / 'data.yaml'}")
        return 0
    if args.action == "from-verdicts":
        from smartscreen.training.journal_source import reviewed_cases_from_journal
        from smartscreen.training.verdicts import export_verdicts

        cases = reviewed_cases_from_journal(args.journal, args.images, scratch=args.out / ".scans")
        report = export_verdicts(cases, args.out, val_fraction=args.val, seed=args.seed)
        print(report.summary())
        print(f"wrote {args.out / 'data.yaml'}")
        return 0
    print(f"unknown action {args.action}", file=sys.stderr)
    return 2
