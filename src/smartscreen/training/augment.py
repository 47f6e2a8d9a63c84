"""Photometric augmentation that keeps X-ray colour meaning.

In pseudo-colour X-ray images hue encodes material (orange organic, green inorganic, blue
metal), so hue is never jittered. What does vary between real scanners, and is randomised
here, is everything around it: detector blur (PSF), resolution (pitch), quantum and line
noise, JPEG compression in vendor exports, brightness / gamma / contrast of the grey ramp,
and the tint of the air background. Boxes are unchanged by all of these.

The transform follows ultralytics' transform protocol (``__call__(labels) -> labels`` with the
BGR uint8 image in ``labels["img"]``) but needs only numpy and OpenCV, so it is testable
without torch. Random numbers come from numpy's global generator, which ultralytics seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class XrayAugmentSettings:
    p_blur: float = 0.3
    blur_sigma_px: tuple[float, float] = (0.4, 1.4)
    p_resample: float = 0.25  # down- then up-sample: a coarser detector pitch
    resample_scale: tuple[float, float] = (0.5, 0.9)
    p_noise: float = 0.35
    noise_std: tuple[float, float] = (2.0, 9.0)  # grey levels
    p_line_noise: float = 0.2  # per-line / per-channel gain stripes of a line-scan detector
    line_noise_std: tuple[float, float] = (0.01, 0.04)  # relative gain
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (45, 95)
    p_tone: float = 0.5  # gamma and contrast of the grey ramp (same for every channel: hue kept)
    gamma: tuple[float, float] = (0.75, 1.35)
    contrast: tuple[float, float] = (0.85, 1.15)
    p_background: float = 0.3  # off-white, slightly tinted air
    background_shift: float = 14.0  # grey levels at most

    @classmethod
    def off(cls) -> XrayAugmentSettings:
        return cls(p_blur=0.0, p_resample=0.0, p_noise=0.0, p_line_noise=0.0, p_jpeg=0.0, p_tone=0.0, p_background=0.0)


def _uniform(bounds: tuple[float, float]) -> float:
    return float(np.random.uniform(bounds[0], bounds[1]))


class XrayPhotometric:
    """Applies :class:`XrayAugmentSettings` to ``labels["img"]`` (uint8 BGR, any size)."""

    def __init__(self, settings: XrayAugmentSettings | None = None) -> None:
        self.settings = settings or XrayAugmentSettings()

    def __call__(self, labels: dict[str, object]) -> dict[str, object]:
        image = labels.get("img")
        if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3:
            labels["img"] = self.apply(image)
        return labels

    def apply(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        s = self.settings
        out: npt.NDArray[np.float32] | None = None
        h, w = image.shape[:2]
        if np.random.rand() < s.p_resample and min(h, w) >= 32:
            f = _uniform(s.resample_scale)
            small = cv2.resize(image, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
            image = np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
        if np.random.rand() < s.p_blur:
            sigma = _uniform(s.blur_sigma_px)
            image = np.asarray(
                cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma * float(np.random.uniform(0.6, 1.4))),
                np.uint8,
            )
        if np.random.rand() < s.p_tone:
            out = image.astype(np.float32) / 255.0
            out = np.power(out, _uniform(s.gamma))
            c = _uniform(s.contrast)
            out = (out - 0.5) * c + 0.5
            out *= 255.0
        if np.random.rand() < s.p_background:
            base = out if out is not None else image.astype(np.float32)
            shift = np.random.uniform(-s.background_shift, 0.0, size=3).astype(np.float32)
            weight = (base.min(axis=2, keepdims=True) / 255.0) ** 4  # only near-white pixels move
            out = base + weight * shift
        if np.random.rand() < s.p_line_noise:
            base = out if out is not None else image.astype(np.float32)
            axis = int(np.random.randint(0, 2))
            n = h if axis == 0 else w
            gains = np.asarray(np.random.normal(1.0, _uniform(s.line_noise_std), size=n), np.float32)
            out = base * (gains[:, None, None] if axis == 0 else gains[None, :, None])
        if np.random.rand() < s.p_noise:
            base = out if out is not None else image.astype(np.float32)
            noise = np.asarray(np.random.normal(0.0, _uniform(s.noise_std), size=(h, w, 1)), np.float32)
            out = base + noise  # the same noise on all channels: luminance noise, hue kept
        if out is not None:
            image = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        if np.random.rand() < s.p_jpeg:
            q = int(np.random.randint(s.jpeg_quality[0], s.jpeg_quality[1] + 1))
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok:
                decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                if decoded is not None:
                    image = np.asarray(decoded, np.uint8)
        return np.ascontiguousarray(image)
