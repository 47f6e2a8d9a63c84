"""``smartscreen dataset merge``: several YOLO datasets -> one, classes matched by *name*.

Each input's class names go through a class map (identity by default), so a dataset whose ids
are ordered differently, or that holds extra classes, is merged correctly or reported.
Splits are kept; images with no split are assigned by hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from smartscreen.errors import DatasetError
from smartscreen.training.classmap import ClassMap
from smartscreen.training.readers import read_yolo
from smartscreen.training.samples import LabelledImage, ReadResult
from smartscreen.training.writer import ConversionReport, UnknownPolicy, write_yolo_dataset


def merge_datasets(
    inputs: Sequence[Path],
    out_dir: Path,
    *,
    class_map: ClassMap | None = None,
    unknown: UnknownPolicy = UnknownPolicy.SKIP_IMAGE,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> ConversionReport:
    if not inputs:
        raise DatasetError("nothing to merge")
    combined = ReadResult()
    for n, data_yaml in enumerate(inputs):
        path = data_yaml if data_yaml.is_file() else data_yaml / "data.yaml"
        result = read_yolo(path, source=f"m{n}")
        # keep the source name short but distinct per input so output names never collide
        result.images = [
            LabelledImage(
                i.image_path, i.boxes, i.split, f"m{n}-{path.parent.name}", i.width_px, i.height_px, i.normalised
            )
            for i in result.images
        ]
        combined.extend(result)
    if out_dir.resolve() in {p.resolve().parent if p.is_file() else p.resolve() for p in inputs}:
        raise DatasetError(f"the output {out_dir} must not be one of the inputs")
    return write_yolo_dataset(
        combined.images,
        out_dir,
        class_map=class_map or ClassMap.identity(),
        unknown=unknown,
        val_fraction=val_fraction,
        seed=seed,
        issues=combined.issues,
        comment="merged by smartscreen dataset merge from:\n" + "\n".join(str(p) for p in inputs),
    )
