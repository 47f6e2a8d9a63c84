"""Tiny datasets the tests draw themselves: white 'parcels' with coloured objects, in every format."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.domain.taxonomy import CLASS_NAMES

# colours in BGR: metal blue, organic orange
BLUE = (200, 90, 20)
ORANGE = (40, 140, 240)


def draw_parcel(
    rng: np.random.Generator, width: int, height: int, n_objects: int
) -> tuple[npt.NDArray[np.uint8], list[tuple[str, int, int, int, int]]]:
    """A white image with a pale carton and ``n_objects`` gun-like (blue) or knife-like (orange) shapes."""
    image = np.full((height, width, 3), 245, np.uint8)
    cv2.rectangle(image, (4, 4), (width - 5, height - 5), (170, 200, 235), -1)
    boxes: list[tuple[str, int, int, int, int]] = []
    for _ in range(n_objects):
        cls = "gun" if rng.random() < 0.5 else "knife"
        w = int(rng.integers(width // 5, width // 3))
        h = int(rng.integers(height // 6, height // 3))
        x1 = int(rng.integers(6, width - w - 6))
        y1 = int(rng.integers(6, height - h - 6))
        if cls == "gun":
            cv2.rectangle(image, (x1, y1), (x1 + w, y1 + h // 2), BLUE, -1)
            cv2.rectangle(image, (x1, y1), (x1 + w // 4, y1 + h), BLUE, -1)
        else:
            cv2.ellipse(image, (x1 + w // 2, y1 + h // 2), (w // 2, max(h // 5, 2)), 0, 0, 360, ORANGE, -1)
            h_used = 2 * max(h // 5, 2)
            y1 = y1 + h // 2 - h_used // 2
            h = h_used
        boxes.append((cls, x1, y1, x1 + w, y1 + h))
    return image, boxes


def make_yolo_dataset(
    root: Path, n_train: int = 8, n_val: int = 4, size: tuple[int, int] = (128, 96), seed: int = 0, n_clean: int = 1
) -> Path:
    """A YOLO dataset with taxonomy class ids; returns its data.yaml."""
    rng = np.random.default_rng(seed)
    width, height = size
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            clean = i < n_clean
            image, boxes = draw_parcel(rng, width, height, 0 if clean else int(rng.integers(1, 3)))
            cv2.imwrite(str(root / "images" / split / f"{split}{i:03d}.png"), image)
            lines = [
                f"{CLASS_NAMES.index(c)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n"
                for c, x1, y1, x2, y2 in boxes
            ]
            (root / "labels" / split / f"{split}{i:03d}.txt").write_text("".join(lines))
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return root / "data.yaml"


def make_coco(root: Path, n: int = 4, seed: int = 1) -> tuple[Path, Path]:
    """COCO JSON with PIDray-style capitalised names; returns (json, images dir)."""
    rng = np.random.default_rng(seed)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, list[dict[str, object]]] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": 7, "name": "Gun"}, {"id": 11, "name": "Knife"}],
    }
    ann_id = 1
    for i in range(n):
        image, boxes = draw_parcel(rng, 128, 96, 2)
        name = f"xray ({i}).png"  # spaces and brackets, as real datasets have
        cv2.imwrite(str(images_dir / name), image)
        doc["images"].append({"id": i + 1, "file_name": name, "width": 128, "height": 96})
        for cls, x1, y1, x2, y2 in boxes:
            doc["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": i + 1,
                    "category_id": 7 if cls == "gun" else 11,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                }
            )
            ann_id += 1
    path = root / "train.json"
    path.write_text(json.dumps(doc))
    return path, images_dir
