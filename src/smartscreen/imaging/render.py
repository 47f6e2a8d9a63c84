"""Material discrimination and pseudo-colour rendering of calibrated scans.

Per pixel: smooth a_L and a_H (5x5, 9x9 on thin objects) for the material channel only, R = a_L / a_H, Zeff from the 2-D
LUT, classes organic / inorganic / metal, air where T_H > 0.975 and impenetrable where T_H < 0.1 %
(both folded into the LUT as special codes, so classification is one table lookup per pixel). Brightness uses the unsmoothed attenuations so edges stay
sharp. One colour-table gather per pixel renders the image.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.domain.render import MaterialClass, RenderedScan
from smartscreen.imaging.calibration import CalibratedScan
from smartscreen.imaging.lut import MaterialLut
from smartscreen.imaging.palette import (
    BACKGROUND_BIN,
    CODES,
    DEFAULT_PALETTE,
    IMPENETRABLE_BIN,
    M_BINS,
    ZEFF_BINS,
    ZEFF_STEP,
    Palette,
)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

BACKGROUND_ATTENUATION = 0.025  # smoothed a_H below this (T_H > 0.975): air
IMPENETRABLE_ATTENUATION = float(-np.log(0.001))  # a_H above this (T_H < 0.1 %): not classified
LOW_ATTENUATION = 0.25  # a_H below this: R is noisy, smooth the material channel over 9x9
ORGANIC_MAX_Z = 10.0
METAL_MIN_Z = 18.0


def _blur(image: F32, size: int) -> F32:
    return np.asarray(cv2.blur(image, (size, size), borderType=cv2.BORDER_REPLICATE), dtype=np.float32)


def _class_table(organic_max_z: float, metal_min_z: float) -> U8:
    z = np.arange(CODES) * ZEFF_STEP
    table = np.full(CODES, MaterialClass.INORGANIC, dtype=np.uint8)
    table[z < organic_max_z] = MaterialClass.ORGANIC
    table[z >= metal_min_z] = MaterialClass.METAL
    table[BACKGROUND_BIN] = MaterialClass.BACKGROUND
    table[IMPENETRABLE_BIN] = MaterialClass.IMPENETRABLE
    return table


_CLASS_TABLE = _class_table(ORGANIC_MAX_Z, METAL_MIN_Z)
_CODE_TO_ZEFF = (np.arange(CODES) * ZEFF_STEP).astype(np.float32)
_CODE_TO_ZEFF[ZEFF_BINS:] = 0.0
# brightness: fused attenuation quantised to 1/64 -> m bin (m = exp(-a)), so no exp per pixel
_FUSED_SCALE = 64.0
_FUSED_STEPS = 1024
_M_BIN_OF_FUSED = np.clip(np.exp(-(np.arange(_FUSED_STEPS) + 0.5) / _FUSED_SCALE) * M_BINS, 0, M_BINS - 1).astype(
    np.int32
)
_CODE_CACHE: dict[tuple[float, ...], npt.NDArray[np.uint8]] = {}


def lut_codes(lut: MaterialLut) -> npt.NDArray[np.uint8]:
    """The LUT as flat per-bin material codes: Zeff / 0.25, or the background / impenetrable codes.

    Rows of the a_H axis below :data:`BACKGROUND_ATTENUATION` are air; above
    :data:`IMPENETRABLE_ATTENUATION` they are impenetrable. Cached per LUT.
    """
    cached = _CODE_CACHE.get(lut.spectral_key)
    if cached is None or cached.size != lut.zeff.size:
        codes = np.clip(np.rint(lut.zeff / ZEFF_STEP), 0, ZEFF_BINS - 1).astype(np.uint8)
        a_rows = np.arange(lut.zeff.shape[0]) * lut.a_high_step  # lower edge of each bin
        codes[a_rows + lut.a_high_step <= BACKGROUND_ATTENUATION] = BACKGROUND_BIN
        codes[a_rows >= IMPENETRABLE_ATTENUATION] = IMPENETRABLE_BIN
        cached = codes.reshape(-1)
        cached.setflags(write=False)
        _CODE_CACHE[lut.spectral_key] = cached
    return cached


def material_codes(calibrated: CalibratedScan, lut: MaterialLut) -> npt.NDArray[np.uint8]:
    """Per-pixel material code (see :func:`lut_codes`) from the smoothed material channel."""
    a_h = calibrated.attenuation_high
    a_l = calibrated.attenuation_low
    # material channel only: 5x5 smoothing, 9x9 where attenuation is low and R is noisy
    sm_h = _blur(a_h, 5)
    sm_l = _blur(a_l, 5)
    wide_h = _blur(a_h, 9)
    wide_l = _blur(a_l, 9)
    thin = wide_h < np.float32(LOW_ATTENUATION)
    np.copyto(sm_h, wide_h, where=thin)
    np.copyto(sm_l, wide_l, where=thin)
    n_h, n_r = lut.zeff.shape
    # R = a_L / a_H, indices computed in float32 and truncated once
    ratio = sm_l / np.maximum(sm_h, np.float32(1e-3))
    ih = sm_h * np.float32(1.0 / lut.a_high_step)
    np.clip(ih, 0, n_h - 1, out=ih)
    ratio -= np.float32(lut.r_min)
    ratio *= np.float32(1.0 / lut.r_step)
    np.clip(ratio, 0, n_r - 1, out=ratio)
    index = ih.astype(np.int32)
    index *= n_r
    index += ratio.astype(np.int32)
    return np.take(lut_codes(lut), index)


def material_maps(calibrated: CalibratedScan, lut: MaterialLut) -> tuple[F32, U8, npt.NDArray[np.uint8]]:
    """``(zeff, material class, material code)`` per pixel of a calibrated scan."""
    codes = material_codes(calibrated, lut)
    return np.take(_CODE_TO_ZEFF, codes), np.take(_CLASS_TABLE, codes), codes


def render_pseudocolour(
    attenuation_high: F32, attenuation_low: F32, codes: npt.NDArray[np.uint8], palette: Palette = DEFAULT_PALETTE
) -> U8:
    """RGB image ``(h, w, 3)`` from attenuations and material codes (see :func:`material_maps`) in a palette."""
    w = np.float32(palette.low_weight * _FUSED_SCALE)
    fused = attenuation_low * w
    fused += attenuation_high * np.float32((1.0 - palette.low_weight) * _FUSED_SCALE)
    # thin, low-contrast regions: light 3x3 denoising of the brightness (as scanner displays do); dense edges stay sharp
    smooth = np.asarray(cv2.GaussianBlur(fused, (3, 3), 0, borderType=cv2.BORDER_REPLICATE), dtype=np.float32)
    np.copyto(fused, smooth, where=smooth < np.float32(0.4 * _FUSED_SCALE))
    if palette.edge_gain > 0:
        # vendor-style edge enhancement (unsharp mask): thin dark outlines on the dense side of edges
        base = np.asarray(cv2.GaussianBlur(fused, (0, 0), 1.5, borderType=cv2.BORDER_REPLICATE), dtype=np.float32)
        fused += (fused - base) * np.float32(palette.edge_gain)
    np.clip(fused, 0, _FUSED_STEPS - 1, out=fused)
    index = codes.astype(np.int32)
    index <<= 8  # * M_BINS
    index += np.take(_M_BIN_OF_FUSED, fused.astype(np.int32))
    rgba = np.take(palette.packed_table(), index).view(np.uint8).reshape(*codes.shape, 4)
    return np.asarray(cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB), dtype=np.uint8)


def render(calibrated: CalibratedScan, lut: MaterialLut, palette: Palette = DEFAULT_PALETTE) -> RenderedScan:
    """Material maps and the pseudo-colour image of a calibrated scan."""
    zeff, material, codes = material_maps(calibrated, lut)
    rgb = render_pseudocolour(calibrated.attenuation_high, calibrated.attenuation_low, codes, palette)
    return RenderedScan(
        rgb=rgb,
        attenuation_high=calibrated.attenuation_high,
        attenuation_low=calibrated.attenuation_low,
        zeff=zeff,
        material=material,
    )
