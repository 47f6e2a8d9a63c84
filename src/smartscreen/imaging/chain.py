"""The imaging chain used on the line: raw high/low counts -> :class:`RenderedScan`, plus helpers.

``ImagingChain(params, calibration).process(high, low)`` runs calibration, material lookup and
pseudo-colour in one call; the LUT and colour table are built once. ``content_box`` gives the
parcel's bounding box (non-air pixels) so detection and training see the same framing, and
``estimate_mass_g`` turns attenuation into mass for the declared-weight check.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smartscreen.domain.render import MaterialClass, RenderedScan
from smartscreen.errors import CalibrationError
from smartscreen.imaging.calibration import CalibratedScan, Calibration, calibrate
from smartscreen.imaging.lut import MaterialLut
from smartscreen.imaging.palette import DEFAULT_PALETTE, Palette
from smartscreen.imaging.rawio import RawScan
from smartscreen.imaging.render import render
from smartscreen.imaging.scanner import ScannerParams

CROP_MARGIN_PX = 16


class ImagingChain:
    """Calibration + material discrimination + pseudo-colour for one scanner.

    Args:
        params: scanner parameters (spectrum for the LUT, pitches for mass estimates).
        calibration: dark/air references; can be replaced later with :meth:`set_calibration`
            when the scanner sends fresh references.
        palette: rendering palette.
    """

    def __init__(
        self, params: ScannerParams, calibration: Calibration | None = None, palette: Palette = DEFAULT_PALETTE
    ) -> None:
        self.params = params
        self.lut = MaterialLut.for_spectrum(params)
        self.palette = palette
        self.calibration = calibration
        palette.table()  # build the colour table now, not on the first parcel

    @classmethod
    def for_raw_scan(cls, raw: RawScan, palette: Palette = DEFAULT_PALETTE) -> ImagingChain:
        """A chain for a stored scan: its own spectrum (from ``meta``) and calibration references."""
        return cls(raw.scanner_params(), raw.calibration, palette)

    def set_calibration(self, calibration: Calibration) -> None:
        self.calibration = calibration

    def calibrate(self, high: npt.NDArray[np.uint16], low: npt.NDArray[np.uint16]) -> CalibratedScan:
        if self.calibration is None:
            raise CalibrationError("the imaging chain has no calibration yet: send dark and air reference lines first")
        return calibrate(high, low, self.calibration)

    def process(
        self, high: npt.NDArray[np.uint16], low: npt.NDArray[np.uint16], palette: Palette | None = None
    ) -> RenderedScan:
        """Raw counts ``(n_lines, n_channels)`` -> calibrated, classified, pseudo-coloured scan."""
        return render(self.calibrate(high, low), self.lut, palette or self.palette)

    def estimate_mass_g(self, rendered: RenderedScan) -> float:
        return estimate_mass_g(rendered, self.lut, self.params)


def content_box(
    material: npt.NDArray[np.uint8], margin_px: int = CROP_MARGIN_PX, min_pixels: int = 3
) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (exclusive max) of non-air pixels plus a margin, clipped to the image; None if empty.

    Rows/columns with fewer than ``min_pixels`` non-air pixels are ignored (noise specks).
    """
    occupied = material != MaterialClass.BACKGROUND
    rows = np.flatnonzero(occupied.sum(axis=1) >= min_pixels)
    cols = np.flatnonzero(occupied.sum(axis=0) >= min_pixels)
    if rows.size == 0 or cols.size == 0:
        return None
    h, w = material.shape
    return (
        max(0, int(cols[0]) - margin_px),
        max(0, int(rows[0]) - margin_px),
        min(w, int(cols[-1]) + 1 + margin_px),
        min(h, int(rows[-1]) + 1 + margin_px),
    )


def areal_density_map(rendered: RenderedScan, lut: MaterialLut) -> npt.NDArray[np.float32]:
    """Areal density (g/cm^2) per pixel from the LUT; 0 on air, LUT ceiling on impenetrable pixels."""
    _, areal = lut.lookup(rendered.attenuation_high, rendered.attenuation_low)
    areal = np.where(rendered.material == MaterialClass.BACKGROUND, np.float32(0.0), areal)
    return np.asarray(areal, dtype=np.float32)


def estimate_mass_g(
    rendered: RenderedScan,
    lut: MaterialLut,
    params: ScannerParams | None = None,
    *,
    line_pitch_mm: float | None = None,
    channel_pitch_mm: float | None = None,
    magnification: float | None = None,
) -> float:
    """X-ray mass estimate: LUT areal density x object-plane pixel area, summed over non-air pixels.

    Pitches come from ``params`` unless given explicitly. Impenetrable pixels count at the LUT
    ceiling, so the estimate is a lower bound for parcels with opaque regions.
    """
    base = params or ScannerParams()
    lp = line_pitch_mm if line_pitch_mm is not None else base.line_pitch_mm
    cp = channel_pitch_mm if channel_pitch_mm is not None else base.channel_pitch_mm
    mag = magnification if magnification is not None else base.magnification
    area_cm2 = lp * (cp / mag) * 0.01
    return float(areal_density_map(rendered, lut).sum(dtype=np.float64) * area_cm2)
