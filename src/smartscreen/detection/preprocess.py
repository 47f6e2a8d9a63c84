"""Pre-processing: content crop, aspect-preserving letterbox into a preallocated batch, and the inverse box map.

Pure numpy + OpenCV, no model runtime. The geometry of every image is kept in a
:class:`Letterbox` so post-processing can map model-space boxes back to source pixels:

    x_source = (x_model - pad_left_px) / scale + crop_x0_px
    y_source = (y_model - pad_top_px) / scale + crop_y0_px

Line-scan images are mostly white air around the parcel; each image is first
cropped to its non-background bounding box plus a margin (the training images
are cropped the same way), then resized so it fits the model's nominal size,
then padded only up to the stride when the model has dynamic spatial axes
(rectangular inputs), or to the fixed size otherwise. Padding is centred, as in
ultralytics' ``LetterBox``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.detection.package import CropSpec, InputSpec
from smartscreen.domain.render import MaterialClass, RenderedScan

# stacked_channels: attenuation -ln(I/I0) of ATTENUATION_FULL_SCALE (about 0.25 % transmission) maps to 255,
# effective Z of ZEFF_FULL_SCALE maps to 255.
ATTENUATION_FULL_SCALE = 6.0
ZEFF_FULL_SCALE = 30.0
# the RGB content crop looks at every 4th pixel of large images
CONTENT_SAMPLE_STEP_PX = 4


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Where one source image went in the model input.

    Attributes:
        source_hw: (height, width) of the source image.
        crop_xyxy: content crop in source pixels, half-open ``[x0, x1) x [y0, y1)``.
        scale: model pixels per source pixel (same on both axes).
        resized_hw: size of the resized crop in model pixels.
        pad_top_px, pad_left_px: offset of the resized crop inside the image's own input tensor.
        input_hw: the image's own input size (stride multiple, or the fixed model size).
    """

    source_hw: tuple[int, int]
    crop_xyxy: tuple[int, int, int, int]
    scale: float
    resized_hw: tuple[int, int]
    pad_top_px: int
    pad_left_px: int
    input_hw: tuple[int, int]

    def to_source(self, xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map ``(n, 4)`` model-input boxes to source pixels, clipped to the crop. Returns a new array."""
        out = np.empty_like(xyxy)
        x0, y0, x1, y1 = self.crop_xyxy
        inv = 1.0 / self.scale
        out[:, 0::2] = (xyxy[:, 0::2] - self.pad_left_px) * inv + x0
        out[:, 1::2] = (xyxy[:, 1::2] - self.pad_top_px) * inv + y0
        np.clip(out[:, 0::2], x0, x1, out=out[:, 0::2])
        np.clip(out[:, 1::2], y0, y1, out=out[:, 1::2])
        return out

    def to_model(self, xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map ``(n, 4)`` source-pixel boxes to model-input pixels (the forward map; for tests and training)."""
        out = np.empty_like(xyxy)
        x0, y0, _, _ = self.crop_xyxy
        out[:, 0::2] = (xyxy[:, 0::2] - x0) * self.scale + self.pad_left_px
        out[:, 1::2] = (xyxy[:, 1::2] - y0) * self.scale + self.pad_top_px
        return out


def content_box(
    image: npt.NDArray[np.uint8], crop: CropSpec, foreground: npt.NDArray[np.bool_] | None = None
) -> tuple[int, int, int, int]:
    """Bounding box ``(x0, y0, x1, y1)`` (half-open) of non-background pixels plus ``crop.margin_px``.

    Rows and columns with fewer than ``crop.min_pixels`` content pixels are ignored
    (noise specks), as in the imaging chain's crop of the training images.

    A pixel is background when every channel is at least ``crop.background_min``
    (white air), unless ``foreground`` (e.g. a material map's non-air pixels) is
    given. The whole image is returned when cropping is off or nothing but air is
    found (an empty tunnel is still run through the model, never skipped).
    """
    h, w = image.shape[:2]
    if not crop.enabled:
        return (0, 0, w, h)
    if foreground is not None:
        mask = np.asarray(foreground.view(np.uint8), np.uint8)
        sy = sx = 1.0
        min_pixels = crop.min_pixels
    else:
        # Work on every CONTENT_SAMPLE_STEP_PX-th pixel (nearest-neighbour decimation, ~0.1 ms for a
        # 1 024-channel scan instead of ~1.5 ms at full resolution); the margin absorbs the few pixels
        # this can shift an edge.
        step = CONTENT_SAMPLE_STEP_PX if min(h, w) >= 16 * CONTENT_SAMPLE_STEP_PX else 1
        small = image
        if step > 1:
            small = np.asarray(cv2.resize(image, (w // step, h // step), interpolation=cv2.INTER_NEAREST), np.uint8)
        sy, sx = h / small.shape[0], w / small.shape[1]
        min_pixels = max(1, math.ceil(crop.min_pixels / step))
        channels = small.shape[2] if small.ndim == 3 else 1
        lo = np.full(channels, crop.background_min, np.uint8)
        hi = np.full_like(lo, 255)
        mask = np.asarray(cv2.inRange(small, lo, hi), np.uint8)  # 255 = air
        mask = np.asarray(cv2.bitwise_not(mask), np.uint8)
    if mask.ndim == 3:
        mask = mask[:, :, 0]
    ones = np.asarray(cv2.threshold(mask, 0, 1, cv2.THRESH_BINARY)[1], np.uint8)
    rows = np.flatnonzero(np.asarray(cv2.reduce(ones, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)).ravel() >= min_pixels)
    cols = np.flatnonzero(np.asarray(cv2.reduce(ones, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)).ravel() >= min_pixels)
    if rows.size == 0 or cols.size == 0:
        return (0, 0, w, h)
    m = crop.margin_px
    pad = 0 if sx == 1.0 and sy == 1.0 else 1  # decimated: widen by one sample so the full margin is kept
    return (
        max(0, math.floor((int(cols[0]) - pad) * sx) - m),
        max(0, math.floor((int(rows[0]) - pad) * sy) - m),
        min(w, math.ceil((int(cols[-1]) + 1 + pad) * sx) + m),
        min(h, math.ceil((int(rows[-1]) + 1 + pad) * sy) + m),
    )


def plan_letterbox(source_hw: tuple[int, int], crop_xyxy: tuple[int, int, int, int], spec: InputSpec) -> Letterbox:
    """Geometry of one image: fit the crop into ``spec.size_hw`` keeping its aspect ratio, centre the padding."""
    x0, y0, x1, y1 = crop_xyxy
    ch, cw = y1 - y0, x1 - x0
    if ch <= 0 or cw <= 0:
        raise ValueError(f"empty crop {crop_xyxy} of an image of size {source_hw}")
    target_h, target_w = spec.size_hw
    scale = min(target_h / ch, target_w / cw)
    rh = min(target_h, max(1, round(ch * scale)))
    rw = min(target_w, max(1, round(cw * scale)))
    if spec.dynamic_hw:
        s = spec.stride_px
        in_h, in_w = math.ceil(rh / s) * s, math.ceil(rw / s) * s
    else:
        in_h, in_w = target_h, target_w
    return Letterbox(
        source_hw=source_hw,
        crop_xyxy=crop_xyxy,
        scale=scale,
        resized_hw=(rh, rw),
        pad_top_px=(in_h - rh) // 2,
        pad_left_px=(in_w - rw) // 2,
        input_hw=(in_h, in_w),
    )


def stacked_channels_image(scan: RenderedScan) -> npt.NDArray[np.uint8]:
    """``(h, w, 3)`` uint8 of high attenuation, low attenuation and effective Z, for ``stacked_channels`` models."""
    out = np.empty((*scan.shape_hw, 3), np.uint8)
    for c, (array, full_scale) in enumerate(
        (
            (scan.attenuation_high, ATTENUATION_FULL_SCALE),
            (scan.attenuation_low, ATTENUATION_FULL_SCALE),
            (scan.zeff, ZEFF_FULL_SCALE),
        )
    ):
        out[..., c] = np.clip(array * np.float32(255.0 / full_scale) + np.float32(0.5), 0.0, 255.0).astype(np.uint8)
    return out


def scan_image(scan: RenderedScan, spec: InputSpec) -> npt.NDArray[np.uint8]:
    """The image a model takes from a rendered scan (``spec.image``)."""
    return scan.rgb if spec.image == "pseudo_colour" else stacked_channels_image(scan)


def scan_foreground(scan: RenderedScan) -> npt.NDArray[np.bool_]:
    """Non-air pixels of a scan, from its material map."""
    return np.asarray(scan.material != MaterialClass.BACKGROUND, dtype=np.bool_)


class BatchBuffer:
    """A float input buffer allocated once for ``max_batch`` images of the model's largest input.

    :meth:`fill` letterboxes a list of images into a contiguous ``(n, 3, H, W)`` view of it,
    where ``(H, W)`` is the largest per-image input size of the list; each image sits at
    the top-left of its slot exactly as in its own input tensor, so batch and single
    results agree.
    """

    def __init__(self, spec: InputSpec, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.spec = spec
        self.max_batch = max_batch
        h, w = spec.size_hw
        self._flat: npt.NDArray[np.float32] | npt.NDArray[np.float16]
        if spec.dtype == "float16":
            self._flat = np.empty(max_batch * 3 * h * w, np.float16)
        else:
            self._flat = np.empty(max_batch * 3 * h * w, np.float32)
        norm = spec.normalisation
        self._plain = norm.is_plain_scale
        self._scale = np.float32(norm.scale)
        # per-channel affine in model channel order: x * a + b
        self._a = np.array([norm.scale / s for s in norm.std], np.float32).reshape(3, 1, 1)
        self._b = np.array([-m / s for m, s in zip(norm.mean, norm.std, strict=True)], np.float32).reshape(3, 1, 1)
        self._pad = (np.float32(spec.pad_value) * self._a + self._b).astype(self._flat.dtype)
        self._swap = spec.colour_order == "BGR"

    def fill(
        self, images: Sequence[npt.NDArray[np.uint8]], layouts: Sequence[Letterbox]
    ) -> npt.NDArray[np.float32] | npt.NDArray[np.float16]:
        """Write ``images`` (HxWx3 uint8 in RGB order) into the buffer; returns the ``(n, 3, H, W)`` input view."""
        n = len(images)
        if n == 0 or n > self.max_batch:
            raise ValueError(f"a batch must hold 1..{self.max_batch} images, got {n}")
        if len(layouts) != n:
            raise ValueError("one Letterbox per image is needed")
        in_h = max(lb.input_hw[0] for lb in layouts)
        in_w = max(lb.input_hw[1] for lb in layouts)
        batch = self._flat[: n * 3 * in_h * in_w].reshape(n, 3, in_h, in_w)
        for i, (image, lb) in enumerate(zip(images, layouts, strict=True)):
            self._pad_around(batch[i], lb)
            x0, y0, x1, y1 = lb.crop_xyxy
            crop: npt.NDArray[np.uint8] = image[y0:y1, x0:x1]
            rh, rw = lb.resized_hw
            if (rh, rw) != (y1 - y0, x1 - x0):
                crop = np.asarray(
                    cv2.resize(crop, (rw, rh), interpolation=cv2.INTER_LINEAR), np.uint8
                )  # as ultralytics
            # de-interleave once (OpenCV, contiguous planes), then scale plane by plane: reading the
            # interleaved image through a transposed view is strided and about 4x slower
            planes = cv2.split(np.ascontiguousarray(crop))
            if self._swap:
                planes = planes[::-1]
            top, left = lb.pad_top_px, lb.pad_left_px
            for c, plane in enumerate(planes):
                region = batch[i, c, top : top + rh, left : left + rw]
                if self._plain:
                    np.multiply(plane, self._scale, out=region, casting="unsafe")
                else:
                    np.multiply(plane, self._a[c], out=region, casting="unsafe")
                    np.add(region, self._b[c], out=region, casting="unsafe")
        return batch

    def _pad_around(self, slot: npt.NDArray[np.float32] | npt.NDArray[np.float16], lb: Letterbox) -> None:
        """Fill only the padding of one ``(3, H, W)`` slot (the image region is overwritten anyway)."""
        top, left = lb.pad_top_px, lb.pad_left_px
        bottom, right = top + lb.resized_hw[0], left + lb.resized_hw[1]
        slot[:, :top] = self._pad
        slot[:, bottom:] = self._pad
        slot[:, top:bottom, :left] = self._pad
        slot[:, top:bottom, right:] = self._pad
