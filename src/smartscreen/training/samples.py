"""Labelled images as read from any dataset format, and the problems found while reading them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class LabelledBox:
    """One object, in pixels of its source image, with the class name the source dataset used."""

    class_name: str
    x1_px: float
    y1_px: float
    x2_px: float
    y2_px: float

    @property
    def width_px(self) -> float:
        return self.x2_px - self.x1_px

    @property
    def height_px(self) -> float:
        return self.y2_px - self.y1_px


@dataclass(frozen=True, slots=True)
class LabelledImage:
    """An image with its boxes. ``boxes == ()`` is a labelled negative (a clean parcel).

    ``split`` is the split the source assigned (``train``/``val``/``test``) or ``""`` when it
    gave none. ``source`` names the dataset it came from (used to keep output names unique).
    Boxes are in source pixels, or in fractions of the image size when ``normalised``.
    """

    image_path: Path
    boxes: tuple[LabelledBox, ...]
    split: str = ""
    source: str = ""
    width_px: int | None = None
    height_px: int | None = None
    normalised: bool = False  # True: box coordinates are fractions of width and height (YOLO)


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem with one file: what is wrong and what was done about it."""

    file: str
    problem: str
    action: str  # "skipped image", "dropped box", "clipped box", ...


@dataclass(slots=True)
class ReadResult:
    """What a reader produced: the usable images and every problem it met, by file name."""

    images: list[LabelledImage] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def extend(self, other: ReadResult) -> None:
        self.images.extend(other.images)
        self.issues.extend(other.issues)
