"""Reading pseudo-colour images and raw scans for ``smartscreen detect``, and drawing detections.

Any PNG or JPEG (grey, RGB, RGBA, 8 or 16 bit, any size) becomes an ``(h, w, 3)`` uint8
RGB array; raw dual-energy ``.npz`` scans are rendered through ``smartscreen.imaging``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.domain.detections import Detections
from smartscreen.domain.render import RenderedScan
from smartscreen.errors import SmartScreenError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
RAW_SUFFIXES = frozenset({".npz"})


class ImageReadError(SmartScreenError):
    """One input file cannot be read (missing, unreadable, corrupt, unsupported)."""


def to_rgb8(decoded: npt.NDArray[np.generic], source: str = "image") -> npt.NDArray[np.uint8]:
    """Convert an OpenCV-decoded array (grey, BGR or BGRA; uint8 or uint16) to ``(h, w, 3)`` uint8 RGB.

    16-bit values are scaled to 8 bits (``v / 257``); transparent pixels are composited
    onto white, the colour of air in a pseudo-colour X-ray image.
    """
    array = np.asarray(decoded)
    if array.dtype == np.uint16:
        array = (array.astype(np.float32) * np.float32(1.0 / 257.0) + np.float32(0.5)).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageReadError(f"{source}: unsupported pixel type {array.dtype} (8- or 16-bit images only)")
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageReadError(f"{source}: unsupported image shape {array.shape}")
    if array.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(array, 3, axis=2))
    if array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.float32) * np.float32(1.0 / 255.0)
        bgr = array[:, :, :3].astype(np.float32) * alpha + np.float32(255.0) * (1.0 - alpha)
        array = (bgr + np.float32(0.5)).astype(np.uint8)
    return np.ascontiguousarray(array[:, :, 2::-1])


def read_image_rgb(path: Path) -> npt.NDArray[np.uint8]:
    """Read a PNG or JPEG as ``(h, w, 3)`` uint8 RGB; :class:`ImageReadError` names the problem."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read: {e.strerror or e}") from e
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file")
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageReadError(f"{path}: not a decodable PNG/JPEG image (corrupt or wrong format)")
    return to_rgb8(decoded, str(path))


def read_raw_scan_rendered(path: Path) -> RenderedScan:
    """Read a raw dual-energy ``.npz`` scan and render it with the project's imaging chain.

    Calibration (dark/air references) and scanner parameters come from the file itself
    (``smartscreen.imaging.read_raw_scan``); the chain is the one the line runs.
    """
    from smartscreen.imaging import ImagingChain, read_raw_scan

    try:
        raw = read_raw_scan(path)
        return ImagingChain(raw.scanner_params(), raw.calibration).process(raw.high, raw.low)
    except SmartScreenError as e:
        message = str(e)
        raise ImageReadError(message if str(path) in message else f"{path}: {message}") from e
    except (OSError, ValueError, KeyError) as e:
        raise ImageReadError(f"{path}: not a valid raw scan: {e}") from e


def _colour(class_id: int) -> tuple[int, int, int]:
    hue = (class_id * 47) % 180
    hsv = np.array([[[hue, 230, 220]]], np.uint8)
    b, g, r = (int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
    return (r, g, b)


def draw_detections(rgb: npt.NDArray[np.uint8], detections: Detections) -> npt.NDArray[np.uint8]:
    """A copy of ``rgb`` with boxes, class names and scores drawn (OpenCV's built-in font; nothing downloaded)."""
    canvas = np.ascontiguousarray(rgb.copy())
    thickness = max(1, round(min(canvas.shape[:2]) / 400))
    for box, score, class_id in zip(detections.xyxy, detections.scores, detections.class_ids, strict=True):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        colour = _colour(int(class_id))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        label = f"{detections.class_names[int(class_id)]} {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + base + 2), colour, -1)
        cv2.putText(canvas, label, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return canvas


def write_image_rgb(path: Path, rgb: npt.NDArray[np.uint8]) -> None:
    ok, encoded = cv2.imencode(path.suffix or ".png", rgb[:, :, ::-1])
    if not ok:
        raise ImageReadError(f"{path}: cannot encode image")
    path.write_bytes(encoded.tobytes())
