"""``smartscreen dataset stats``: counts per class, box sizes, negatives, and a plot."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from smartscreen.training.datayaml import SPLITS, load_data_yaml
from smartscreen.training.readers import read_yolo
from smartscreen.training.samples import Issue

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class SplitStats:
    images: int = 0
    negatives: int = 0
    boxes: int = 0
    boxes_per_class: dict[str, int] = field(default_factory=dict)
    images_per_class: dict[str, int] = field(default_factory=dict)
    same_as: str = ""  # this split lists the same images as an earlier one (not counted twice)


@dataclass(slots=True)
class DatasetStats:
    data: str
    class_names: list[str]
    splits: dict[str, SplitStats]
    box_width_px: dict[str, float]  # percentiles p5, p50, p95 over all boxes
    box_height_px: dict[str, float]
    box_area_fraction: dict[str, float]
    image_size_px: dict[str, float]  # median width, height
    small_boxes: int  # under 16 px on the short side: hard for a detector at small input sizes
    issues: list[Issue]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def summary(self) -> str:
        lines = [f"{self.data}: {len(self.class_names)} classes"]
        for split, s in self.splits.items():
            if s.same_as:
                lines.append(f"  {split}: the same images as {s.same_as} (counted once)")
                continue
            lines.append(f"  {split}: {s.images} images ({s.negatives} negatives), {s.boxes} boxes")
        totals: dict[str, int] = {}
        for s in self.splits.values():
            for k, v in s.boxes_per_class.items():
                totals[k] = totals.get(k, 0) + v
        lines.append("  boxes per class: " + ", ".join(f"{k} {totals.get(k, 0)}" for k in self.class_names))
        missing = [k for k in self.class_names if not totals.get(k)]
        if missing:
            lines.append("  classes WITHOUT boxes: " + ", ".join(missing))
        lines.append(
            f"  box width px p5/p50/p95: {self.box_width_px.get('p5', 0):.0f}/{self.box_width_px.get('p50', 0):.0f}/"
            f"{self.box_width_px.get('p95', 0):.0f}; height: {self.box_height_px.get('p5', 0):.0f}/"
            f"{self.box_height_px.get('p50', 0):.0f}/{self.box_height_px.get('p95', 0):.0f}; "
            f"{self.small_boxes} boxes under 16 px"
        )
        if self.issues:
            lines.append(f"  {len(self.issues)} issue(s), e.g. {self.issues[0].file}: {self.issues[0].problem}")
        return "\n".join(lines)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {f"p{p}": float(np.percentile(arr, p)) for p in (5, 50, 95)}


def dataset_stats(data_yaml: Path) -> tuple[DatasetStats, dict[str, list[float]]]:
    """Statistics of a YOLO dataset; also returns the raw per-box lists for plotting."""
    data = load_data_yaml(data_yaml)
    splits: dict[str, SplitStats] = {}
    widths: list[float] = []
    heights: list[float] = []
    areas: list[float] = []
    img_w: list[float] = []
    img_h: list[float] = []
    issues: list[Issue] = []
    seen: set[Path] = set()
    entries: dict[str, str] = {}
    for split in SPLITS:
        entry = data.split_entry(split)
        if entry is None:
            continue
        key = str(entry)
        if key in entries:
            splits[split] = SplitStats(same_as=entries[key])
            continue
        entries[key] = split
        result = read_yolo(data_yaml, splits=(split,))
        issues.extend(result.issues)
        s = SplitStats()
        for image in result.images:
            s.images += 1
            if not image.boxes:
                s.negatives += 1
            first_time = image.image_path not in seen
            seen.add(image.image_path)
            w = h = 0
            if first_time:
                header = cv2.imread(str(image.image_path), cv2.IMREAD_REDUCED_GRAYSCALE_8)
                if header is not None:
                    h, w = header.shape[0] * 8, header.shape[1] * 8
                    img_w.append(w)
                    img_h.append(h)
            for name in {b.class_name for b in image.boxes}:
                s.images_per_class[name] = s.images_per_class.get(name, 0) + 1
            for box in image.boxes:
                s.boxes += 1
                s.boxes_per_class[box.class_name] = s.boxes_per_class.get(box.class_name, 0) + 1
                if first_time and w and h:
                    widths.append(box.width_px * w)
                    heights.append(box.height_px * h)
                    areas.append(box.width_px * box.height_px)
        splits[split] = s
    stats = DatasetStats(
        data=str(data_yaml),
        class_names=list(data.class_names),
        splits=splits,
        box_width_px=_percentiles(widths),
        box_height_px=_percentiles(heights),
        box_area_fraction=_percentiles(areas),
        image_size_px={
            "median_width": float(np.median(img_w)) if img_w else 0.0,
            "median_height": float(np.median(img_h)) if img_h else 0.0,
        },
        small_boxes=int(sum(1 for w, h in zip(widths, heights, strict=True) if min(w, h) < 16)),
        issues=issues,
    )
    return stats, {"width": widths, "height": heights, "area": areas}


def plot_stats(stats: DatasetStats, raw: dict[str, list[float]], target: Path) -> Path | None:
    """Bar chart of boxes per class and per split, and a box-size scatter. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (train extra): no plot")
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), dpi=100)
    x = np.arange(len(stats.class_names))
    bottom = np.zeros(len(stats.class_names))
    for split, s in stats.splits.items():
        if s.same_as:
            continue
        counts = np.array([s.boxes_per_class.get(n, 0) for n in stats.class_names], float)
        ax1.bar(x, counts, bottom=bottom, label=split)
        bottom += counts
    ax1.set_xticks(x, stats.class_names, rotation=60, ha="right", fontsize=8)
    ax1.set_ylabel("boxes")
    ax1.set_title("boxes per class")
    ax1.legend()
    if raw["width"]:
        ax2.scatter(raw["width"], raw["height"], s=3, alpha=0.3)
        ax2.set_xscale("log")
        ax2.set_yscale("log")
    ax2.set_xlabel("box width px")
    ax2.set_ylabel("box height px")
    ax2.set_title("box sizes (source pixels)")
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return target
