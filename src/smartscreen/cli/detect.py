"""``smartscreen detect PATH... --model models/<name> [--out DIR] [--json FILE] [--conf 0.25]``.

One JSON record per input image, boxes in the input image's pixels::

    {"image": path, "width": w, "height": h,
     "detections": [{"class": name, "class_id": k, "score": s, "box_xyxy": [x1, y1, x2, y2]}]}

A file that cannot be read gets ``{"image": path, "error": "..."}`` instead, is reported on
stderr, and the run goes on; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

HELP = "detect threats in pseudo-colour images (PNG/JPEG) or raw dual-energy scans (.npz) with a model package"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image/scan files or directories of them")
    parser.add_argument("--model", type=Path, required=True, help="model package directory (models/<name>)")
    parser.add_argument("--out", type=Path, help="write annotated images to this directory")
    parser.add_argument("--json", type=Path, dest="json_file", help="write the records to this JSON file")
    parser.add_argument("--conf", type=float, default=None, help="confidence threshold (default: the package's)")
    parser.add_argument("--iou", type=float, default=None, help="NMS IoU threshold (default: the package's)")
    parser.add_argument(
        "--providers",
        default="cpu",
        help="execution providers in order of preference, comma separated: cpu, cuda, tensorrt (default cpu)",
    )
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    parser.add_argument("--batch", type=int, default=4, help="images per inference batch (default 4)")


def _inputs(paths: list[Path], suffixes: frozenset[str]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        else:
            yield path  # missing or odd files are reported by the reader


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from smartscreen.detection.engine import OnnxDetector
    from smartscreen.detection.images import (
        IMAGE_SUFFIXES,
        RAW_SUFFIXES,
        ImageReadError,
        draw_detections,
        read_image_rgb,
        read_raw_scan_rendered,
        write_image_rgb,
    )
    from smartscreen.domain.detections import Detections
    from smartscreen.domain.render import RenderedScan

    if args.conf is not None and not 0.0 <= args.conf <= 1.0:
        print(f"smartscreen detect: --conf must be in [0, 1], got {args.conf}", file=sys.stderr)
        return 2
    if args.batch < 1:
        print(f"smartscreen detect: --batch must be >= 1, got {args.batch}", file=sys.stderr)
        return 2
    detector = OnnxDetector.from_package(
        args.model,
        providers=[p.strip() for p in args.providers.split(",") if p.strip()],
        intra_op_threads=args.threads,
        conf_threshold=args.conf,
        iou_threshold=args.iou,
        max_batch=args.batch,
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, object]] = []
    failures = 0
    pending: list[tuple[Path, np.ndarray | RenderedScan]] = []

    def record(path: Path, rgb: np.ndarray, detections: Detections) -> None:
        h, w = rgb.shape[:2]
        records.append(
            {
                "image": str(path),
                "width": int(w),
                "height": int(h),
                "detections": [
                    {
                        "class": detections.class_names[int(k)],
                        "class_id": int(k),
                        "score": round(float(s), 5),
                        "box_xyxy": [round(float(v), 2) for v in box],
                    }
                    for box, s, k in zip(detections.xyxy, detections.scores, detections.class_ids, strict=True)
                ],
            }
        )
        if not args.json_file:
            print(json.dumps(records[-1]), flush=True)
        if args.out is not None:
            out = args.out / f"{path.name}.det.png"
            write_image_rgb(out, draw_detections(rgb, detections))

    def flush() -> None:
        image_idx = [k for k, (_, x) in enumerate(pending) if isinstance(x, np.ndarray)]
        scan_idx = [k for k, (_, x) in enumerate(pending) if isinstance(x, RenderedScan)]
        found: dict[int, Detections] = {}
        if image_idx:
            found.update(zip(image_idx, detector.detect_images([pending[k][1] for k in image_idx]), strict=True))  # type: ignore[misc]
        if scan_idx:
            found.update(zip(scan_idx, detector.detect([pending[k][1] for k in scan_idx]), strict=True))  # type: ignore[misc]
        for k, (path, item) in enumerate(pending):  # records in input order
            record(path, item.rgb if isinstance(item, RenderedScan) else item, found[k])
        pending.clear()

    for path in _inputs(list(args.paths), IMAGE_SUFFIXES | RAW_SUFFIXES):
        try:
            if path.suffix.lower() in RAW_SUFFIXES:
                item: np.ndarray | RenderedScan = read_raw_scan_rendered(path)
            else:
                item = read_image_rgb(path)
        except ImageReadError as e:
            if pending:
                flush()  # keep the records in input order
            failures += 1
            print(f"smartscreen detect: {e}", file=sys.stderr)
            records.append({"image": str(path), "error": str(e)})
            if not args.json_file:
                print(json.dumps(records[-1]), flush=True)
            continue
        pending.append((path, item))
        if len(pending) >= args.batch:
            flush()
    if pending:
        flush()
    if args.json_file:
        args.json_file.parent.mkdir(parents=True, exist_ok=True)
        args.json_file.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    n_ok = len(records) - failures
    print(
        f"smartscreen detect: {n_ok} image(s) processed with {detector.model_id}"
        + (f", {failures} could not be read" if failures else ""),
        file=sys.stderr,
    )
    return 1 if failures else 0
