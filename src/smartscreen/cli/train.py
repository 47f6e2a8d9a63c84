"""``smartscreen train --data data.yaml``: train a detector with ultralytics (train extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "train a detector from a model YAML on a YOLO dataset (ultralytics; needs the train extra)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data.yaml of the dataset (smartscreen dataset convert / synth)")
    parser.add_argument(
        "--model", default="yolo11n.yaml", help="model YAML (from scratch, nothing downloaded) or our own .pt"
    )
    parser.add_argument("--imgsz", type=int, default=416, help="training image size in pixels (default 416)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--time", type=float, dest="time_h", help="hard cap in hours (overrides --epochs)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (training is deterministic for a seed)")
    parser.add_argument("--project", type=Path, default=Path("runs/train"), help="parent of the run folder")
    parser.add_argument("--name", default="smartscreen", help="run folder name (made unique by ultralytics)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device index such as 0")
    parser.add_argument("--close-mosaic", type=int, default=5, help="last N epochs without mosaic")
    parser.add_argument("--hsv-h", type=float, default=0.0, help="hue jitter (default 0: hue encodes material)")
    parser.add_argument("--hsv-s", type=float, default=0.0, help="saturation jitter (default 0)")
    parser.add_argument("--hsv-v", type=float, default=0.25, help="brightness jitter")
    parser.add_argument("--no-xray-aug", action="store_true", help="switch off the X-ray photometric augmentation")
    parser.add_argument("--cache", action="store_true", help="keep decoded images in RAM")
    parser.add_argument("--no-val", action="store_true", help="validate only after the last epoch")
    parser.add_argument(
        "--optimizer",
        default="auto",
        choices=("auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"),
        help="optimizer (default auto: ultralytics picks it and its learning rate from the run length)",
    )
    parser.add_argument("--lr0", type=float, help="initial learning rate (needs --optimizer other than auto)")
    parser.add_argument(
        "--nbs",
        type=int,
        default=64,
        help="nominal batch: batches are accumulated up to it before each optimizer step (default 64; "
        "set it to --batch for one update per batch, more updates per epoch)",
    )
    parser.add_argument("--patience", type=int, default=100)
    parser.add_argument("--resume", type=Path, metavar="RUN", help="continue an interrupted run folder")


def run(args: argparse.Namespace) -> int:
    from smartscreen.training.augment import XrayAugmentSettings
    from smartscreen.training.trainer import TrainSettings, resume, train, with_overrides

    def progress(row: dict[str, float]) -> None:
        print(
            f"epoch {int(row['epoch'])}/{int(row['epochs'])}  {row['elapsed_s']:.0f}s  "
            f"mAP50 {row.get('metrics/mAP50(B)', float('nan')):.4f}  mAP50-95 {row.get('metrics/mAP50-95(B)', float('nan')):.4f}",
            file=sys.stderr,
            flush=True,
        )

    if args.resume is not None:
        result = resume(args.resume, on_epoch=progress)
    else:
        if args.data is None:
            print("smartscreen train: --data is required (or --resume RUN)", file=sys.stderr)
            return 2
        if args.lr0 is not None and args.optimizer == "auto":
            print(
                "smartscreen train: --lr0 needs --optimizer (with 'auto' ultralytics picks its own learning rate)",
                file=sys.stderr,
            )
            return 2
        settings = TrainSettings(
            data=args.data,
            model=args.model,
            imgsz=args.imgsz,
            epochs=args.epochs,
            batch=args.batch,
            time_h=args.time_h,
            seed=args.seed,
            project=args.project,
            name=args.name,
            threads=args.threads,
            device=args.device,
            close_mosaic=args.close_mosaic,
            hsv_h=args.hsv_h,
            hsv_s=args.hsv_s,
            hsv_v=args.hsv_v,
            xray=XrayAugmentSettings.off() if args.no_xray_aug else XrayAugmentSettings(),
            cache=args.cache,
            val=not args.no_val,
            patience=args.patience,
            optimizer=args.optimizer,
            nbs=args.nbs,
        )
        if args.lr0 is not None:
            settings = with_overrides(settings, lr0=args.lr0)
        result = train(settings, on_epoch=progress)
    print(f"run folder: {result.run_dir}")
    print(f"weights: {result.best_weights}")
    for key, value in sorted(result.metrics.items()):
        print(f"  {key}: {value:.4f}")
    print(f"next: smartscreen export {result.run_dir} --name NAME")
    return 0
