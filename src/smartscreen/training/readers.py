"""Readers for the public X-ray dataset formats and the project's own synthetic output.

Each reader returns a :class:`ReadResult`: images with boxes in the source's own class names
(mapping to the taxonomy happens in :mod:`smartscreen.training.writer`) plus an :class:`Issue`
for every broken, empty or inconsistent annotation, naming the file. A reader never stops at
the first bad file and never drops one without saying so.

Formats:
    coco     COCO JSON (PIDray, CLCXray): ``images``, ``annotations`` (``bbox`` = x, y, w, h), ``categories``
    voc      Pascal VOC XML, one file per image (SIXray, EDS)
    opixray  text, one file per image, lines ``image_name class x1 y1 x2 y2`` (OPIXray, HiXray)
    yolo     ``class cx cy w h`` normalised, one file per image, with a data.yaml naming the classes
    synth    ``smartscreen synth`` output: a YOLO dataset plus raw/ and meta/ (taxonomy class ids)
"""

from __future__ import annotations

import json
import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from smartscreen.errors import DatasetError
from smartscreen.training.datayaml import DataYaml, load_data_yaml
from smartscreen.training.samples import Issue, LabelledBox, LabelledImage, ReadResult

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
FORMATS = ("coco", "voc", "opixray", "hixray", "yolo", "synth")


def _float(value: object) -> float:
    result = float(str(value).strip())
    if not math.isfinite(result):
        raise ValueError(f"not a finite number: {value!r}")
    return result


class _ImageIndex:
    """Finds images by file name or stem under a folder (case-insensitive suffix)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise DatasetError(f"image folder {root} does not exist")
        self.root = root
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, list[Path]] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                self.by_name.setdefault(path.name, path)
                rel = path.relative_to(root).as_posix()
                self.by_name.setdefault(rel, path)
                self.by_stem.setdefault(path.stem, []).append(path)

    def find(self, name: str) -> Path | None:
        name = name.strip().replace("\\", "/")
        if name in self.by_name:
            return self.by_name[name]
        base = name.rsplit("/", 1)[-1]
        if base in self.by_name:
            return self.by_name[base]
        candidates = self.by_stem.get(Path(base).stem, [])
        return candidates[0] if len(candidates) == 1 else None

    def all(self) -> list[Path]:
        return sorted({p for paths in self.by_stem.values() for p in paths})


def _split_from_path(path: Path) -> str:
    parts = {p.lower() for p in path.parts}
    for split, aliases in (
        ("train", {"train", "training"}),
        ("val", {"val", "valid", "validation"}),
        ("test", {"test"}),
    ):
        if parts & aliases:
            return split
    return ""


# --------------------------------------------------------------------------- COCO


def read_coco(annotation_file: Path, images_dir: Path, *, source: str = "coco", split: str = "") -> ReadResult:
    """COCO JSON. Images listed without annotations become negatives; crowd boxes are kept."""
    result = ReadResult()
    fname = annotation_file.name
    try:
        doc = json.loads(annotation_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"cannot read COCO file {annotation_file}: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DatasetError(f"{annotation_file}: not a COCO detection file (no 'images' list)")
    categories: dict[int, str] = {}
    for cat in doc.get("categories") or []:
        try:
            categories[int(cat["id"])] = str(cat["name"])
        except (KeyError, TypeError, ValueError):
            result.issues.append(Issue(fname, f"category entry {cat!r} lacks id/name", "ignored category"))
    index = _ImageIndex(images_dir)
    images: dict[int, tuple[Path, int | None, int | None]] = {}
    for entry in doc["images"]:
        try:
            image_id = int(entry["id"])
            file_name = str(entry["file_name"])
        except (KeyError, TypeError, ValueError):
            result.issues.append(Issue(fname, f"image entry {entry!r} lacks id/file_name", "skipped image"))
            continue
        path = index.find(file_name)
        if path is None:
            result.issues.append(
                Issue(file_name, f"listed in {fname} but not found under {images_dir}", "skipped image")
            )
            continue
        width = entry.get("width")
        height = entry.get("height")
        images[image_id] = (path, int(width) if width else None, int(height) if height else None)
    boxes: dict[int, list[LabelledBox]] = {i: [] for i in images}
    broken_images: set[int] = set()
    for ann in doc.get("annotations") or []:
        try:
            image_id = int(ann["image_id"])
            category = int(ann["category_id"])
            x, y, w, h = (_float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as e:
            result.issues.append(Issue(fname, f"annotation {ann.get('id', '?')}: malformed ({e})", "dropped box"))
            continue
        if image_id not in images:
            if image_id not in {int(e.get("id", -1)) for e in doc["images"] if isinstance(e, dict)}:
                result.issues.append(
                    Issue(fname, f"annotation {ann.get('id', '?')} refers to unknown image {image_id}", "dropped box")
                )
            continue
        if category not in categories:
            result.issues.append(
                Issue(
                    images[image_id][0].name,
                    f"annotation {ann.get('id', '?')}: unknown category id {category}",
                    "skipped image",
                )
            )
            broken_images.add(image_id)
            continue
        if w <= 0 or h <= 0:
            result.issues.append(
                Issue(
                    images[image_id][0].name, f"annotation {ann.get('id', '?')}: empty box w={w} h={h}", "dropped box"
                )
            )
            continue
        boxes[image_id].append(LabelledBox(categories[category], x, y, x + w, y + h))
    for image_id, (path, width, height) in sorted(images.items()):
        if image_id in broken_images:
            continue
        result.images.append(
            LabelledImage(
                path, tuple(boxes[image_id]), split or _split_from_path(annotation_file), source, width, height
            )
        )
    return result


# --------------------------------------------------------------------------- Pascal VOC


def _voc_int(node: ET.Element | None, tag: str) -> float:
    if node is None:
        raise ValueError("missing <bndbox>")
    child = node.find(tag)
    if child is None or child.text is None:
        raise ValueError(f"missing <{tag}>")
    return _float(child.text)


def read_voc(annotations_dir: Path, images_dir: Path, *, source: str = "voc", split: str = "") -> ReadResult:
    """One XML per image. Images without an XML are reported (not assumed clean)."""
    result = ReadResult()
    if not annotations_dir.is_dir():
        raise DatasetError(f"annotation folder {annotations_dir} does not exist")
    index = _ImageIndex(images_dir)
    used: set[Path] = set()
    for xml_path in sorted(annotations_dir.rglob("*.xml")):
        try:
            root = ET.parse(xml_path).getroot()
        except (ET.ParseError, OSError) as e:
            result.issues.append(Issue(xml_path.name, f"unreadable XML: {e}", "skipped image"))
            continue
        filename = (root.findtext("filename") or "").strip()
        image = index.find(filename) if filename else None
        if image is None:
            image = index.find(xml_path.stem)
        if image is None:
            result.issues.append(
                Issue(xml_path.name, f"image {filename or xml_path.stem!r} not found", "skipped image")
            )
            continue
        size = root.find("size")
        width = height = None
        if size is not None:
            try:
                width = int(_float(size.findtext("width", "0"))) or None
                height = int(_float(size.findtext("height", "0"))) or None
            except ValueError:
                result.issues.append(Issue(xml_path.name, "malformed <size>", "ignored size"))
        boxes: list[LabelledBox] = []
        for n, obj in enumerate(root.iter("object")):
            name = (obj.findtext("name") or "").strip()
            if not name:
                result.issues.append(Issue(xml_path.name, f"object {n} has no <name>", "dropped box"))
                continue
            bnd = obj.find("bndbox")
            try:
                x1, y1, x2, y2 = (_voc_int(bnd, t) for t in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError as e:
                result.issues.append(Issue(xml_path.name, f"object {n} ({name}): {e}", "dropped box"))
                continue
            if x2 <= x1 or y2 <= y1:
                result.issues.append(
                    Issue(
                        xml_path.name, f"object {n} ({name}): empty or inverted box {x1},{y1},{x2},{y2}", "dropped box"
                    )
                )
                continue
            boxes.append(LabelledBox(name, x1, y1, x2, y2))
        if not boxes and next(root.iter("object"), None) is not None:
            result.issues.append(Issue(xml_path.name, "every object is broken", "skipped image"))
            continue
        used.add(image)
        result.images.append(
            LabelledImage(image, tuple(boxes), split or _split_from_path(xml_path), source, width, height)
        )
    for image in index.all():
        if image not in used and not any(i.file == image.name for i in result.issues):
            result.issues.append(Issue(image.name, "image has no annotation file", "skipped image"))
    return result


# --------------------------------------------------------------------------- OPIXray / HiXray text

_SEP = re.compile(r"[\s,]+")


def read_opixray(annotations_dir: Path, images_dir: Path, *, source: str = "opixray", split: str = "") -> ReadResult:
    """One text file per image, each line ``image_name class x1 y1 x2 y2`` (spaces or commas).

    Class names with spaces are joined with underscores. An empty file is a negative image
    (OPIXray V2 and HiXray ship background images that way).
    """
    result = ReadResult()
    if not annotations_dir.is_dir():
        raise DatasetError(f"annotation folder {annotations_dir} does not exist")
    index = _ImageIndex(images_dir)
    for txt in sorted(annotations_dir.rglob("*.txt")):
        try:
            lines = txt.read_text(encoding="utf-8", errors="strict").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            result.issues.append(Issue(txt.name, f"unreadable: {e}", "skipped image"))
            continue
        boxes: list[LabelledBox] = []
        image_name = ""
        broken = 0
        for lineno, line in enumerate(lines, 1):
            tokens = [t for t in _SEP.split(line.strip()) if t]
            if not tokens:
                continue
            if len(tokens) < 6:
                result.issues.append(
                    Issue(txt.name, f"line {lineno}: expected 6 fields, got {len(tokens)}", "dropped box")
                )
                broken += 1
                continue
            image_name = image_name or tokens[0]
            name = "_".join(tokens[1:-4])
            try:
                x1, y1, x2, y2 = (_float(t) for t in tokens[-4:])
            except ValueError as e:
                result.issues.append(Issue(txt.name, f"line {lineno}: {e}", "dropped box"))
                broken += 1
                continue
            if x2 <= x1 or y2 <= y1:
                result.issues.append(
                    Issue(txt.name, f"line {lineno} ({name}): empty or inverted box {x1},{y1},{x2},{y2}", "dropped box")
                )
                broken += 1
                continue
            boxes.append(LabelledBox(name, x1, y1, x2, y2))
        image = index.find(image_name) if image_name else None
        if image is None:
            image = index.find(txt.stem)
        if image is None:
            result.issues.append(Issue(txt.name, f"image {image_name or txt.stem!r} not found", "skipped image"))
            continue
        if broken and not boxes:
            result.issues.append(Issue(txt.name, "every line is broken", "skipped image"))
            continue
        result.images.append(LabelledImage(image, tuple(boxes), split or _split_from_path(txt), source))
    return result


# --------------------------------------------------------------------------- YOLO


def _label_path_for(image: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` in the path becomes ``/labels/``, suffix ``.txt``."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def parse_yolo_label(text: str, names: tuple[str, ...], file: str) -> tuple[list[LabelledBox], list[Issue]]:
    """Parse YOLO label text into boxes with *normalised* coordinates (0..1) and issues.

    Polygon lines (segmentation labels) are reduced to their bounding box.
    """
    boxes: list[LabelledBox] = []
    issues: list[Issue] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            values = [_float(t) for t in tokens]
        except ValueError as e:
            issues.append(Issue(file, f"line {lineno}: {e}", "dropped box"))
            continue
        cls_value = values[0]
        if cls_value != int(cls_value) or not 0 <= int(cls_value) < len(names):
            issues.append(
                Issue(file, f"line {lineno}: class id {tokens[0]} outside 0..{len(names) - 1}", "dropped box")
            )
            continue
        if len(values) == 5:
            cx, cy, w, h = values[1:]
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        elif len(values) >= 7 and len(values) % 2 == 1:
            xs, ys = values[1::2], values[2::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        else:
            issues.append(Issue(file, f"line {lineno}: expected 5 fields, got {len(values)}", "dropped box"))
            continue
        if x2 <= x1 or y2 <= y1:
            issues.append(Issue(file, f"line {lineno}: empty box", "dropped box"))
            continue
        if x1 < -0.01 or y1 < -0.01 or x2 > 1.01 or y2 > 1.01:
            issues.append(Issue(file, f"line {lineno}: box outside the image (not normalised?)", "clipped box"))
        boxes.append(LabelledBox(names[int(cls_value)], x1, y1, x2, y2))
    return boxes, issues


def _yolo_image_list(data: DataYaml, entry: str | list[str]) -> list[Path]:
    entries = [entry] if isinstance(entry, str) else list(entry)
    images: list[Path] = []
    for item in entries:
        path = data.resolve(item)
        if path.is_dir():
            images.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file() and path.suffix == ".txt":
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    p = Path(line.strip())
                    images.append(p if p.is_absolute() else (path.parent / p).resolve())
        else:
            raise DatasetError(f"{data.file}: split entry {item!r} -> {path} is neither a folder nor a list file")
    return images


def read_yolo(data_yaml: Path, *, source: str = "yolo", splits: Iterable[str] = ("train", "val", "test")) -> ReadResult:
    """A YOLO dataset described by its data.yaml. Boxes are returned normalised (0..1).

    An image listed in several splits (e.g. ``train`` and ``val`` both pointing at ``images/``)
    is read once, with no split assigned, so the writer splits it.
    """
    data = load_data_yaml(data_yaml)
    result = ReadResult()
    seen: dict[Path, set[str]] = {}
    for split in splits:
        entry = data.split_entry(split)
        if entry is None:
            continue
        for image in _yolo_image_list(data, entry):
            seen.setdefault(image, set()).add(split)
    for image, split_set in sorted(seen.items()):
        label_file = _label_path_for(image)
        if not image.is_file():
            result.issues.append(Issue(image.name, "listed but missing", "skipped image"))
            continue
        if not label_file.is_file():
            result.issues.append(
                Issue(image.name, f"no label file {label_file.name} (not assumed clean)", "skipped image")
            )
            continue
        try:
            text = label_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            result.issues.append(Issue(label_file.name, f"unreadable: {e}", "skipped image"))
            continue
        boxes, issues = parse_yolo_label(text, data.class_names, label_file.name)
        result.issues.extend(issues)
        if not boxes and text.strip():
            result.issues.append(Issue(label_file.name, "every line is broken", "skipped image"))
            continue
        split = next(iter(split_set)) if len(split_set) == 1 else ""
        result.images.append(LabelledImage(image, tuple(boxes), split, source, normalised=True))
    return result


def read_synth(out_dir: Path) -> ReadResult:
    """Output of ``smartscreen synth --out DIR``: a YOLO dataset in taxonomy class ids."""
    data_yaml = out_dir / "data.yaml"
    if not data_yaml.is_file():
        raise DatasetError(f"{out_dir} has no data.yaml: is it a 'smartscreen synth' output folder?")
    result = read_yolo(data_yaml, source="synth")
    if not (out_dir / "meta").is_dir():
        logger.warning("%s has no meta/ folder: reading it as plain YOLO", out_dir)
    return result


def read_dataset(fmt: str, source: Path, *, images: Path | None = None, split: str = "") -> ReadResult:
    """Dispatch on format name. ``source`` is the annotation file or folder (data.yaml or folder for YOLO)."""
    fmt = fmt.lower()
    if fmt == "coco":
        return read_coco(source, images or source.parent, split=split)
    if fmt == "voc":
        return read_voc(source, images or source, split=split)
    if fmt in ("opixray", "hixray"):
        return read_opixray(source, images or source, source=fmt, split=split)
    if fmt == "yolo":
        return read_yolo(source if source.is_file() else source / "data.yaml")
    if fmt == "synth":
        return read_synth(source)
    raise DatasetError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
