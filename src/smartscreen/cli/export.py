"""``smartscreen export RUN --name NAME``: a training run -> models/NAME/ (ONNX + model.yaml)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a training run to a model package models/NAME/ (ONNX, dynamic batch and size; needs the train extra)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN", help="run folder written by 'smartscreen train'")
    parser.add_argument("--name", required=True, help="package name (folder under --models)")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--models", type=Path, default=Path("models"), help="parent folder of packages")
    parser.add_argument("--weights", choices=["best", "last"], default="best")
    parser.add_argument("--imgsz", type=int, help="nominal input size (default: the training size)")
    parser.add_argument("--conf", type=float, default=0.25, help="default score threshold in the package")
    parser.add_argument(
        "--tta",
        choices=("none", "h", "hv", "d4"),
        default="none",
        help="test-time augmentation the package asks for: none, h (plus the left-right mirror), hv (four mirrored "
        "views), d4 (eight: mirrors and transposes); "
        "the line and smartscreen eval run it that way",
    )
    parser.add_argument("--description", default="")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing package")
    parser.add_argument(
        "--with-weights",
        action="store_true",
        help="also copy the PyTorch weights into the package as weights.pt, so training can continue from it "
        "(smartscreen train --model models/NAME/weights.pt)",
    )


def run(args: argparse.Namespace) -> int:
    from smartscreen.training.export import ExportSettings, export_run

    package = export_run(
        ExportSettings(
            run_dir=args.run_dir,
            name=args.name,
            version=args.version,
            models_dir=args.models,
            weights=args.weights,
            imgsz=args.imgsz,
            conf=args.conf,
            tta=args.tta,
            description=args.description,
            overwrite=args.overwrite,
            include_weights=args.with_weights,
        )
    )
    size_mb = package.onnx_path.stat().st_size / 1e6
    print(f"wrote {package.directory} ({package.model_id}, {size_mb:.1f} MB, sha256 {package.manifest.sha256[:16]}...)")
    print(f"next: smartscreen eval --model {package.directory} --data DATA.yaml")
    return 0
