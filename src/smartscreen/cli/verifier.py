"""``smartscreen verifier --model models/NAME --data data.yaml --out models/NEW``: train the second-look crop
classifier on the detector's own candidates and attach it to a copy of the package (needs the ``train`` extra)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

HELP = "train a second-look crop classifier on a package's candidate boxes and attach it to the package"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model package whose detector proposes the boxes")
    parser.add_argument("--data", type=Path, required=True, help="data.yaml: crops are mined from its train split")
    parser.add_argument(
        "--out", type=Path, required=True, help="package to write (a copy of --model plus the verifier)"
    )
    parser.add_argument("--version", help="version of the new package (default: the model's)")
    parser.add_argument(
        "--run", type=Path, help="run folder for the mined crops and the log (default runs/verifier/NAME)"
    )
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=128, help="crops per optimiser step (default 128)")
    parser.add_argument("--lr", type=float, default=0.003, help="peak learning rate, one-cycle (default 0.003)")
    parser.add_argument("--crop-px", type=int, default=96, help="side of the crop the classifier takes (default 96)")
    parser.add_argument("--context", type=float, default=1.5, help="crop side / the box's longer side (default 1.5)")
    parser.add_argument(
        "--backbone",
        default="package",
        help="initial features: package = the backbone of --model's weights.pt (when it has one), a weights.pt "
        "path, or none (a small CNN from random initialisation, --width channels)",
    )
    parser.add_argument("--width", type=int, default=24, help="first-stage channels of the small CNN (default 24)")
    parser.add_argument("--weight", type=float, default=0.5, help="verifier weight in the fused score (default 0.5)")
    parser.add_argument(
        "--evidence",
        choices=("class", "object"),
        default="class",
        help="fuse the verifier's probability of the box's class (default) or of any object (1 - background)",
    )
    parser.add_argument("--min-score", type=float, default=0.01, help="detector score below which boxes drop")
    parser.add_argument("--max-candidates", type=int, default=32, help="boxes per image looked at (default 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="mine only the first N train and N/4 val images (a quick check)")
    parser.add_argument(
        "--float32-weights",
        action="store_true",
        help="keep the verifier's weights in float32 (default: stored as float16, computed in float32; half the file)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    from smartscreen.detection.package import VerifierSpec, load_model_package
    from smartscreen.detection.verifier import attach_verifier
    from smartscreen.training.evaluate import load_truth, open_detector
    from smartscreen.training.verifier import (
        CropSet,
        EpochRecord,
        export_onnx,
        mine_crops,
        store_weights_as_float16,
        train_classifier,
        training_info,
    )

    source = load_model_package(args.model, check_onnx=False)
    if args.backbone == "none":
        backbone = None
    elif args.backbone == "package":
        backbone = source.directory / "weights.pt" if (source.directory / "weights.pt").is_file() else None
    else:
        backbone = Path(args.backbone)
        if not backbone.is_file():
            raise SystemExit(f"--backbone {backbone} does not exist")
    if args.out.exists() and args.out.resolve() != source.directory.resolve():
        if not args.overwrite:
            raise SystemExit(f"{args.out} exists; pass --overwrite to replace it")
        shutil.rmtree(args.out)
    run_dir = args.run or Path("runs/verifier") / args.out.name
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = VerifierSpec(
        sha256="0" * 64,  # set when the file is attached
        crop_px=args.crop_px,
        context=args.context,
        weight=args.weight,
        evidence=args.evidence,
        min_score=args.min_score,
        max_candidates=args.max_candidates,
    )

    def mined(split: str, limit: int | None, seed: int) -> CropSet:
        cache = run_dir / f"crops-{split}.npz"
        if cache.is_file():
            print(f"crops of the {split} split from {cache}", file=sys.stderr)
            return CropSet.load(cache)
        _, paths, truths, _ = load_truth(args.data, split)
        if limit is not None:
            paths, truths = paths[:limit], truths[:limit]
        detector = open_detector(
            source.directory, conf=spec.min_score, threads=args.threads, verifier=False
        )  # the candidates the line's verifier would see

        def progress(done: int, total: int) -> None:
            if done == total or done % 200 < 8:
                print(f"  mining {split}: {done}/{total} images", file=sys.stderr, flush=True)

        crops = mine_crops(
            detector,
            paths,
            truths,
            crop_px=spec.crop_px,
            context=spec.context,
            min_score=spec.min_score,
            max_candidates=spec.max_candidates,
            seed=seed,
            progress=progress,
        )
        crops.save(cache)
        print(f"{split}: {crops.counts()}", file=sys.stderr)
        return crops

    train = mined("train", args.limit, args.seed)
    val = mined("val", None if args.limit is None else max(args.limit // 4, 1), args.seed + 1)
    log_path = run_dir / "epochs.jsonl"
    log_path.write_text("", encoding="utf-8")

    def log(record: EpochRecord) -> None:
        print(
            f"epoch {record.epoch}/{args.epochs}: train loss {record.train_loss:.3f}, val loss {record.val_loss:.3f}, "
            f"accuracy {record.val_accuracy:.3f}, background kept out {record.val_background_recall:.3f}, "
            f"objects right {record.val_object_recall:.3f} ({record.seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        with log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(record)) + "\n")

    model, _ = train_classifier(
        train,
        val,
        crop_px=spec.crop_px,
        epochs=args.epochs,
        width=args.width,
        backbone=backbone,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        log=log,
    )
    onnx_file = export_onnx(model, spec.crop_px, run_dir / "verifier.onnx")
    if not args.float32_weights:
        before, after = store_weights_as_float16(onnx_file)
        print(f"verifier weights stored as float16: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB", file=sys.stderr)
    if args.out.resolve() != source.directory.resolve():
        shutil.copytree(source.directory, args.out)
    info = training_info(
        train, f"{args.data} [train], candidates of {source.model_id}", args.epochs, spec.crop_px, backbone
    )
    package = attach_verifier(args.out, onnx_file, spec.model_copy(update={"training": info}), version=args.version)
    print(
        f"wrote {package.directory} ({package.model_id}) with its verifier; its recorded metrics were cleared: run "
        f"`smartscreen eval --model {package.directory} --data {args.data} --record`"
    )
    return 0
