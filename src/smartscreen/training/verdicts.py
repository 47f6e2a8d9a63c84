"""Operator verdicts as labels: reviewed parcels -> a YOLO dataset for retraining.

* ``THREAT_CONFIRMED`` with boxes: the boxes (in scan pixels) become the labels.
* ``FALSE_ALARM``: the parcel becomes a labelled negative (an empty label file): exactly the
  hard negatives that cut false alarms when merged into the training data.
* ``NEEDS_OPENING``: no ground truth yet; left out and reported.

Only the latest verdict of each parcel counts (a correction is a new verdict that supersedes
the earlier one). The result merges with other datasets through ``smartscreen dataset merge``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from smartscreen.domain.events import OperatorVerdict, VerdictKind
from smartscreen.training.classmap import ClassMap
from smartscreen.training.samples import Issue, LabelledBox, LabelledImage
from smartscreen.training.writer import ConversionReport, UnknownPolicy, write_yolo_dataset


@dataclass(frozen=True, slots=True)
class ReviewedCase:
    """A reviewed parcel: its pseudo-colour scan image and one operator verdict on it."""

    parcel_id: str
    image_path: Path
    verdict: OperatorVerdict


def latest_verdicts(cases: Iterable[ReviewedCase]) -> list[ReviewedCase]:
    """The most recent verdict per parcel (ties: the later one in input order)."""
    latest: dict[str, ReviewedCase] = {}
    for case in cases:
        current = latest.get(case.parcel_id)
        if current is None or case.verdict.at_ns >= current.verdict.at_ns:
            latest[case.parcel_id] = case
    return [latest[k] for k in sorted(latest)]


def verdicts_to_images(cases: Iterable[ReviewedCase]) -> tuple[list[LabelledImage], list[Issue]]:
    images: list[LabelledImage] = []
    issues: list[Issue] = []
    for case in latest_verdicts(cases):
        name = f"{case.parcel_id} ({case.image_path.name})"
        kind = case.verdict.kind
        if kind is VerdictKind.NEEDS_OPENING:
            issues.append(Issue(name, "verdict 'needs opening': no ground truth yet", "skipped image"))
            continue
        if not case.image_path.is_file():
            issues.append(Issue(name, f"scan image {case.image_path} is missing", "skipped image"))
            continue
        if kind is VerdictKind.FALSE_ALARM:
            images.append(LabelledImage(case.image_path, (), source="verdicts"))
            continue
        if not case.verdict.boxes:
            issues.append(Issue(name, "threat confirmed without a box: cannot train on it", "skipped image"))
            continue
        boxes = tuple(LabelledBox(b.class_name, b.x1, b.y1, b.x2, b.y2) for b in case.verdict.boxes)
        images.append(LabelledImage(case.image_path, boxes, source="verdicts"))
    return images, issues


def export_verdicts(
    cases: Iterable[ReviewedCase], out_dir: Path, *, val_fraction: float = 0.1, seed: int = 0
) -> ConversionReport:
    """Write the reviewed parcels as a YOLO dataset in taxonomy classes (unknown classes reported)."""
    images, issues = verdicts_to_images(cases)
    return write_yolo_dataset(
        images,
        out_dir,
        class_map=ClassMap.identity(),
        unknown=UnknownPolicy.SKIP_IMAGE,
        val_fraction=val_fraction,
        seed=seed,
        issues=issues,
        comment="operator verdicts exported by smartscreen (confirmed threats + cleared alarms as negatives)",
    )
