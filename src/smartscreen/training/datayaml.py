"""The ultralytics ``data.yaml``: reading it robustly and fingerprinting the data it names.

Ultralytics resolves a relative ``path:`` against its own settings directory, not the yaml's
folder (a classic offline pitfall). Here a relative or missing ``path`` means "relative to the
yaml file", and :func:`resolved_copy` writes a copy with absolute paths for ultralytics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartscreen.errors import DatasetError
from smartscreen.strict_yaml import load_yaml

SPLITS = ("train", "val", "test")


class DataYamlFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    path: str | None = None
    train: str | list[str] | None = None
    val: str | list[str] | None = None
    test: str | list[str] | None = None
    names: list[str] | dict[int, str] = Field(description="class names, as a list or {id: name}")
    nc: int | None = None


@dataclass(frozen=True, slots=True)
class DataYaml:
    file: Path
    root: Path
    class_names: tuple[str, ...]
    splits: tuple[tuple[str, str | tuple[str, ...]], ...]

    def split_entry(self, split: str) -> str | list[str] | None:
        for name, entry in self.splits:
            if name == split:
                return entry if isinstance(entry, str) else list(entry)
        return None

    def resolve(self, entry: str) -> Path:
        p = Path(entry)
        return p if p.is_absolute() else (self.root / p).resolve()


def load_data_yaml(path: Path) -> DataYaml:
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    except yaml.YAMLError as e:
        raise DatasetError(f"{path} is not valid YAML: {e}") from e
    try:
        parsed = DataYamlFile.model_validate(raw if raw is not None else {})
    except ValidationError as e:
        raise DatasetError(f"{path} is not a valid data.yaml: {e}") from e
    if isinstance(parsed.names, dict):
        ids = sorted(parsed.names)
        if ids != list(range(len(ids))):
            raise DatasetError(f"{path}: class ids in 'names' must be 0..n-1 without gaps, got {ids}")
        names = tuple(parsed.names[i] for i in ids)
    else:
        names = tuple(parsed.names)
    if parsed.nc is not None and parsed.nc != len(names):
        raise DatasetError(f"{path}: nc={parsed.nc} but {len(names)} names")
    base = path.parent.resolve()
    root = base if not parsed.path else (Path(parsed.path) if Path(parsed.path).is_absolute() else base / parsed.path)
    if not root.is_dir() and parsed.path:
        # a data.yaml moved with its dataset: an absolute path that no longer exists means "here"
        root = base
    splits: list[tuple[str, str | tuple[str, ...]]] = []
    for split in SPLITS:
        entry = getattr(parsed, split)
        if entry:
            splits.append((split, entry if isinstance(entry, str) else tuple(entry)))
    return DataYaml(file=path, root=root.resolve(), class_names=names, splits=tuple(splits))


def write_data_yaml(out_dir: Path, class_names: tuple[str, ...], splits: dict[str, str], *, comment: str = "") -> Path:
    """Write ``out_dir/data.yaml`` with an absolute ``path`` (what ultralytics needs)."""
    doc: dict[str, object] = {"path": str(out_dir.resolve())}
    for split in SPLITS:
        if split in splits:
            doc[split] = splits[split]
    doc["nc"] = len(class_names)
    doc["names"] = dict(enumerate(class_names))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    header = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    target = out_dir / "data.yaml"
    target.write_text(header + text, encoding="utf-8")
    return target


def resolved_copy(data: DataYaml, target: Path) -> Path:
    """A copy of ``data`` with every path absolute, for ultralytics."""
    doc: dict[str, object] = {"path": str(data.root)}
    for split, entry in data.splits:
        doc[split] = str(data.resolve(entry)) if isinstance(entry, str) else [str(data.resolve(e)) for e in entry]
    doc["nc"] = len(data.class_names)
    doc["names"] = dict(enumerate(data.class_names))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def fingerprint(data: DataYaml, splits: tuple[str, ...] = SPLITS) -> tuple[str, int]:
    """sha256 over every image's bytes and label text of the named splits, in path order.

    Returns (hex digest, number of images). Identical data gives the same hash wherever it lives.
    """
    from smartscreen.training.readers import IMAGE_SUFFIXES, _label_path_for, _yolo_image_list

    digest = hashlib.sha256()
    digest.update(("|".join(data.class_names)).encode())
    count = 0
    for split in splits:
        entry = data.split_entry(split)
        if entry is None:
            continue
        digest.update(f"\n[{split}]".encode())
        for image in sorted(_yolo_image_list(data, entry)):
            if image.suffix.lower() not in IMAGE_SUFFIXES or not image.is_file():
                continue
            digest.update(image.name.encode())
            digest.update(hashlib.sha256(image.read_bytes()).digest())
            label = _label_path_for(image)
            digest.update(label.read_bytes() if label.is_file() else b"<no label>")
            count += 1
    return digest.hexdigest(), count
