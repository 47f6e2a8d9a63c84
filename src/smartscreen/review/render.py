"""Operator image layers as PNG: pseudo-colour, high, low, material map, and boxes (drawn or as an overlay)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.domain.render import MaterialClass, RenderedScan


class Layer(StrEnum):
    PSEUDO = "pseudo"  # standard pseudo-colour
    HIGH = "high"  # high-energy transmission, grey
    LOW = "low"  # low-energy transmission, grey
    MATERIAL = "material"  # material class map, flat colours
    BOXES = "boxes"  # transparent overlay with the boxes only


class BoxSource(StrEnum):
    DETECTOR = "detector"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class DrawBox:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    score: float | None
    source: BoxSource


# RGB per material class: white background, orange organic, green inorganic, blue metal, black impenetrable
MATERIAL_RGB: dict[MaterialClass, tuple[int, int, int]] = {
    MaterialClass.BACKGROUND: (255, 255, 255),
    MaterialClass.ORGANIC: (235, 140, 30),
    MaterialClass.INORGANIC: (60, 170, 60),
    MaterialClass.METAL: (40, 90, 220),
    MaterialClass.IMPENETRABLE: (0, 0, 0),
}
_BOX_RGB = {BoxSource.DETECTOR: (230, 20, 20), BoxSource.OPERATOR: (255, 0, 200)}
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def _transmission_grey(attenuation: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Grey image of transmission exp(-attenuation), linear: air white, dense dark (like a single-energy view)."""
    transmission = np.exp(-np.clip(attenuation, 0.0, 20.0))
    return np.asarray(np.clip(transmission * 255.0 + 0.5, 0, 255), dtype=np.uint8)


def _material_rgb(material: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    lut = np.zeros((256, 3), np.uint8)
    lut[:] = (128, 128, 128)  # unknown class values show grey
    for cls, rgb in MATERIAL_RGB.items():
        lut[int(cls)] = rgb
    return lut[material]


def layer_rgb(scan: RenderedScan, layer: Layer) -> npt.NDArray[np.uint8]:
    """The (h, w, 3) RGB image of one layer (BOXES gives a white canvas)."""
    if layer is Layer.PSEUDO:
        return scan.rgb
    if layer is Layer.HIGH:
        return np.repeat(_transmission_grey(scan.attenuation_high)[:, :, None], 3, axis=2)
    if layer is Layer.LOW:
        return np.repeat(_transmission_grey(scan.attenuation_low)[:, :, None], 3, axis=2)
    if layer is Layer.MATERIAL:
        return _material_rgb(scan.material)
    h, w = scan.shape_hw
    return np.full((h, w, 3), 255, np.uint8)


def _draw(canvas: npt.NDArray[np.uint8], boxes: tuple[DrawBox, ...], channels: int) -> None:
    h, w = canvas.shape[:2]
    thickness = max(2, round(min(h, w) / 300))
    scale = max(0.5, min(h, w) / 900)
    for box in boxes:
        r, g, b = _BOX_RGB[box.source]
        colour: tuple[int, ...] = (b, g, r, 255) if channels == 4 else (b, g, r)
        p1 = (round(min(max(box.x1, 0), w - 1)), round(min(max(box.y1, 0), h - 1)))
        p2 = (round(min(max(box.x2, 0), w - 1)), round(min(max(box.y2, 0), h - 1)))
        cv2.rectangle(canvas, p1, p2, colour, thickness)
        text = box.label if box.score is None else f"{box.label} {box.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(canvas, (p1[0], top), (p1[0] + tw + 4, top + th + base + 2), colour, -1)
        white: tuple[int, ...] = (255, 255, 255, 255) if channels == 4 else (255, 255, 255)
        cv2.putText(canvas, text, (p1[0] + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, white, 1, cv2.LINE_AA)


def encode_png(scan: RenderedScan, layer: Layer, boxes: tuple[DrawBox, ...] = ()) -> bytes:
    """PNG bytes of a layer, with ``boxes`` drawn on it; the BOXES layer is a transparent overlay."""
    if layer is Layer.BOXES:
        h, w = scan.shape_hw
        bgra = np.zeros((h, w, 4), np.uint8)
        _draw(bgra, boxes, 4)
        ok, buf = cv2.imencode(".png", bgra, _PNG_PARAMS)
    else:
        bgr = np.ascontiguousarray(layer_rgb(scan, layer)[:, :, ::-1])
        if boxes:
            _draw(bgr, boxes, 3)
        ok, buf = cv2.imencode(".png", bgr, _PNG_PARAMS)
    if not ok:
        raise ValueError(f"PNG encoding of layer {layer.value} failed")
    return bytes(buf)
