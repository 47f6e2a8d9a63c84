"""What the imaging chain hands to detection, review and storage."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt


class MaterialClass(IntEnum):
    """Material classes of the standard pseudo-colour convention."""

    BACKGROUND = 0
    ORGANIC = 1  # orange, Zeff < ~10
    INORGANIC = 2  # green, mixed / light metals, Zeff ~10-18
    METAL = 3  # blue, Zeff > ~18
    IMPENETRABLE = 4  # black, too dense to classify


@dataclass(frozen=True, slots=True)
class RenderedScan:
    """Calibrated channels, material maps and the operator image of one scan.

    All arrays share the scan's ``(height, width)`` = ``(n_lines, n_channels)``.

    Attributes:
        rgb: standard pseudo-colour image, ``(h, w, 3)`` uint8, RGB order.
        attenuation_high: ``-ln(I/I0)`` of the high-energy channel, float32.
        attenuation_low: ``-ln(I/I0)`` of the low-energy channel, float32.
        zeff: effective atomic number estimate, float32 (0 where background).
        material: :class:`MaterialClass` per pixel, uint8.
    """

    rgb: npt.NDArray[np.uint8]
    attenuation_high: npt.NDArray[np.float32]
    attenuation_low: npt.NDArray[np.float32]
    zeff: npt.NDArray[np.float32]
    material: npt.NDArray[np.uint8]

    def __post_init__(self) -> None:
        if self.rgb.dtype != np.uint8 or self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError(f"rgb must be (h, w, 3) uint8, got {self.rgb.dtype} {self.rgb.shape}")
        hw = self.rgb.shape[:2]
        for name, array, dtype in (
            ("attenuation_high", self.attenuation_high, np.float32),
            ("attenuation_low", self.attenuation_low, np.float32),
            ("zeff", self.zeff, np.float32),
            ("material", self.material, np.uint8),
        ):
            if array.dtype != dtype or array.shape != hw:
                raise ValueError(f"{name} must be {np.dtype(dtype)} with shape {hw}, got {array.dtype} {array.shape}")

    @property
    def shape_hw(self) -> tuple[int, int]:
        return (int(self.rgb.shape[0]), int(self.rgb.shape[1]))
