"""Write labelled images as one YOLO-format dataset with a ``data.yaml`` and a report.

Layout::

    OUT/images/{train,val,test}/<name>.png|.jpg
    OUT/labels/{train,val,test}/<name>.txt      class cx cy w h (normalised), taxonomy class ids
    OUT/data.yaml                               absolute path, splits, taxonomy names
    OUT/conversion-report.json                  counts, ignored / unknown classes, every issue by file

Images: 8-bit RGB JPEG and PNG are copied byte for byte; RGBA is composited onto white (the
X-ray background), grey is expanded to three channels, 16-bit is scaled to 8-bit; those are
written as PNG. Output names are sanitised (dataset file names contain spaces and brackets) and
made unique with a short hash of the source path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.domain.taxonomy import CLASS_NAMES
from smartscreen.errors import DatasetError
from smartscreen.training.classmap import ClassMap, Outcome
from smartscreen.training.datayaml import SPLITS, write_data_yaml
from smartscreen.training.samples import Issue, LabelledImage

logger = logging.getLogger(__name__)

MIN_BOX_PX = 2.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UnknownPolicy(StrEnum):
    SKIP_IMAGE = "skip-image"  # leave images holding an unknown class out (default: no half-labelled images)
    DROP_BOX = "drop-box"  # keep the image, drop the unknown boxes (they become background!)
    ERROR = "error"  # stop


@dataclass(slots=True)
class ConversionReport:
    images_in: int = 0
    images_written: dict[str, int] = field(default_factory=dict)
    negatives_written: int = 0
    boxes_per_class: dict[str, int] = field(default_factory=dict)
    ignored_per_source_class: dict[str, int] = field(default_factory=dict)
    unknown_per_source_class: dict[str, int] = field(default_factory=dict)
    unknown_examples: dict[str, list[str]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def to_json(self) -> str:
        doc = asdict(self)
        return json.dumps(doc, indent=2, ensure_ascii=False)

    def summary(self) -> str:
        lines = [
            f"images read: {self.images_in}; written: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.images_written.items()))
            + f" (of which {self.negatives_written} negatives)",
            "boxes per class: " + (", ".join(f"{k} {v}" for k, v in sorted(self.boxes_per_class.items())) or "none"),
        ]
        if self.ignored_per_source_class:
            lines.append(
                "ignored (by the class map): "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.ignored_per_source_class.items()))
            )
        if self.unknown_per_source_class:
            lines.append(
                "UNKNOWN classes (not in the class map): "
                + ", ".join(
                    f"{k} {v} (e.g. {', '.join(self.unknown_examples.get(k, [])[:3])})"
                    for k, v in sorted(self.unknown_per_source_class.items())
                )
            )
        if self.issues:
            counts = Counter(i.action for i in self.issues)
            lines.append(f"{len(self.issues)} issue(s): " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
            lines.extend(f"  {i.file}: {i.problem} -> {i.action}" for i in self.issues[:20])
            if len(self.issues) > 20:
                lines.append(f"  ... {len(self.issues) - 20} more in conversion-report.json")
        return "\n".join(lines)


def load_image_bgr(path: Path) -> tuple[npt.NDArray[np.uint8], bool]:
    """Read any image as 8-bit BGR. Returns (image, converted) where converted means the file
    was not already 8-bit 3-channel (so it must be re-encoded rather than copied)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise DatasetError(f"{path.name}: not a readable image (corrupt or unsupported)")
    converted = False
    if image.dtype == np.uint16:
        peak = int(image.max())
        scale = 255.0 / 65535.0 if peak > 4095 else 255.0 / max(peak, 1)
        image = np.clip(image.astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
        converted = True
    elif image.dtype != np.uint8:
        raise DatasetError(f"{path.name}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        converted = True
    elif image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
        converted = True
    elif image.shape[2] == 1:
        image = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
        converted = True
    elif image.shape[2] != 3:
        raise DatasetError(f"{path.name}: {image.shape[2]} channels")
    return np.ascontiguousarray(image), converted


def output_stem(image: LabelledImage) -> str:
    tag = hashlib.sha256(str(image.image_path.resolve()).encode()).hexdigest()[:8]
    stem = _UNSAFE.sub("_", image.image_path.stem).strip("_")[:80] or "image"
    source = _UNSAFE.sub("_", image.source).strip("_")
    return f"{source}_{stem}_{tag}" if source else f"{stem}_{tag}"


def assign_split(stem: str, val_fraction: float, test_fraction: float, seed: int) -> str:
    """Deterministic split from a hash of the output name (stable as datasets grow)."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{stem}".encode()).digest()[:8], "big") / 2**64
    if h < test_fraction:
        return "test"
    if h < test_fraction + val_fraction:
        return "val"
    return "train"


def _normalise_split(split: str) -> str:
    return {"valid": "val", "validation": "val", "training": "train"}.get(split, split)


def write_yolo_dataset(
    images: Sequence[LabelledImage],
    out_dir: Path,
    *,
    class_map: ClassMap,
    unknown: UnknownPolicy = UnknownPolicy.SKIP_IMAGE,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    issues: Sequence[Issue] = (),
    class_names: tuple[str, ...] = CLASS_NAMES,
    comment: str = "",
) -> ConversionReport:
    """Map classes, normalise images, write labels and ``data.yaml``; return the report."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DatasetError("val and test fractions must be in [0, 1) and sum to less than 1")
    report = ConversionReport(images_in=len(images), issues=list(issues))
    ids = {name: i for i, name in enumerate(class_names)}
    # first pass: class mapping (cheap), so an ERROR policy fails before any file is written
    planned: list[tuple[LabelledImage, list[tuple[int, int]]]] = []  # (image, [(box index, class id)])
    for image in images:
        kept: list[tuple[int, int]] = []
        has_unknown = False
        for n, box in enumerate(image.boxes):
            res = class_map.resolve(box.class_name)
            if res.outcome is Outcome.MAPPED:
                kept.append((n, ids[res.target]))
            elif res.outcome is Outcome.IGNORED:
                report.ignored_per_source_class[box.class_name] = (
                    report.ignored_per_source_class.get(box.class_name, 0) + 1
                )
            else:
                has_unknown = True
                report.unknown_per_source_class[box.class_name] = (
                    report.unknown_per_source_class.get(box.class_name, 0) + 1
                )
                examples = report.unknown_examples.setdefault(box.class_name, [])
                if len(examples) < 5:
                    examples.append(image.image_path.name)
        if has_unknown:
            if unknown is UnknownPolicy.ERROR:
                continue
            if unknown is UnknownPolicy.SKIP_IMAGE:
                report.issues.append(
                    Issue(image.image_path.name, "holds a class not in the class map", "skipped image")
                )
                continue
            report.issues.append(Issue(image.image_path.name, "holds a class not in the class map", "dropped box"))
        planned.append((image, kept))
    if unknown is UnknownPolicy.ERROR and report.unknown_per_source_class:
        raise DatasetError(
            "classes not in the class map: "
            + ", ".join(
                f"{k} ({v} boxes, e.g. {report.unknown_examples[k][0]})"
                for k, v in sorted(report.unknown_per_source_class.items())
            )
            + "; add them to the map's 'classes' or 'ignore'"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written_stems: set[str] = set()
    for image, kept in planned:
        stem = output_stem(image)
        if stem in written_stems:
            report.issues.append(Issue(image.image_path.name, "listed twice", "skipped duplicate"))
            continue
        try:
            pixels, converted = load_image_bgr(image.image_path)
        except DatasetError as e:
            report.issues.append(Issue(image.image_path.name, str(e), "skipped image"))
            continue
        height, width = pixels.shape[:2]
        if image.width_px and image.height_px and (image.width_px, image.height_px) != (width, height):
            report.issues.append(
                Issue(
                    image.image_path.name,
                    f"annotation says {image.width_px}x{image.height_px}, image is {width}x{height}",
                    "used the image size",
                )
            )
        sx, sy = (float(width), float(height)) if image.normalised else (1.0, 1.0)
        lines: list[str] = []
        for n, cls in kept:
            box = image.boxes[n]
            x1, y1, x2, y2 = box.x1_px * sx, box.y1_px * sy, box.x2_px * sx, box.y2_px * sy
            cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
            cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
            if cx2 - cx1 < MIN_BOX_PX or cy2 - cy1 < MIN_BOX_PX:
                report.issues.append(
                    Issue(
                        image.image_path.name,
                        f"box {n} ({box.class_name}) {x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f} is outside the "
                        f"{width}x{height} image or under {MIN_BOX_PX:.0f} px",
                        "dropped box",
                    )
                )
                continue
            if max(abs(cx1 - x1), abs(cy1 - y1), abs(cx2 - x2), abs(cy2 - y2)) > 1.0:
                report.issues.append(
                    Issue(image.image_path.name, f"box {n} ({box.class_name}) crosses the image edge", "clipped box")
                )
            lines.append(
                f"{cls} {(cx1 + cx2) / 2 / width:.6f} {(cy1 + cy2) / 2 / height:.6f} "
                f"{(cx2 - cx1) / width:.6f} {(cy2 - cy1) / height:.6f}"
            )
            report.boxes_per_class[class_names[cls]] = report.boxes_per_class.get(class_names[cls], 0) + 1
        if kept and not lines:
            report.issues.append(Issue(image.image_path.name, "every box is unusable", "skipped image"))
            continue
        split = _normalise_split(image.split)
        if split not in SPLITS:
            split = assign_split(stem, val_fraction, test_fraction, seed)
        image_dir = out_dir / "images" / split
        label_dir = out_dir / "labels" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        suffix = image.image_path.suffix.lower()
        if not converted and suffix in (".png", ".jpg", ".jpeg"):
            shutil.copyfile(image.image_path, image_dir / f"{stem}{'.jpg' if suffix == '.jpeg' else suffix}")
        else:
            ok, encoded = cv2.imencode(".png", pixels)
            if not ok:
                raise DatasetError(f"cannot encode {image.image_path.name} as PNG")
            (image_dir / f"{stem}.png").write_bytes(encoded.tobytes())
        (label_dir / f"{stem}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        written_stems.add(stem)
        report.images_written[split] = report.images_written.get(split, 0) + 1
        if not lines:
            report.negatives_written += 1
    splits = {s: f"images/{s}" for s in SPLITS if report.images_written.get(s)}
    if "train" in splits and "val" not in splits:
        logger.warning("%s: no validation images; data.yaml points val at the training images", out_dir)
        splits["val"] = splits["train"]
    write_data_yaml(out_dir, class_names, splits, comment=comment or "written by smartscreen dataset")
    (out_dir / "conversion-report.json").write_text(report.to_json(), encoding="utf-8")
    return report
