"""Material discrimination and pseudo-colour rendering of calibrated scans.

Per pixel: smooth a_L and a_H (5x5, 9x9 on thin objects) for the material channel only, R = a_L / a_H, Zeff from the 2-D
LUT, classes organic / inorganic / metal, air where the fused transmission is near 1 and
impenetrable where T_H is below ~0.3 %. Brightness uses the unsmoothed attenuations so edges stay
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
    DEFAULT_PALETTE,
    IMPENETRABLE_BIN,
    M_BINS,
    ZEFF_BINS,
    ZEFF_STEP,
    Palette,
)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

BACKGROUND_ATTENUATION = 0.03  # mean of a_L and a_H below this (m > 0.97): air
IMPENETRABLE_ATTENUATION = float(-np.log(0.001))  # a_H above this (T_H < 0.1 %): not classified
LOW_ATTENUATION = 0.25  # a_H below this: R is noisy, smooth the material channel over 9x9
ORGANIC_MAX_Z = 10.0
METAL_MIN_Z = 18.0


# Zeff quantised to 0.25 steps -> float and class, as 256-entry tables
def _blur(image: F32, size: int) -> F32:
    return np.asarray(cv2.blur(image, (size, size), borderType=cv2.BORDER_REPLICATE), dtype=np.float32)


_ZQ_TO_ZEFF = (np.arange(256) * ZEFF_STEP).astype(np.float32)


def _class_table(organic_max_z: float, metal_min_z: float) -> U8:
    z = np.arange(256) * ZEFF_STEP
    table = np.full(256, MaterialClass.INORGANIC, dtype=np.uint8)
    table[z < organic_max_z] = MaterialClass.ORGANIC
    table[z >= metal_min_z] = MaterialClass.METAL
    return table


_CLASS_TABLE = _class_table(ORGANIC_MAX_Z, METAL_MIN_Z)


def material_maps(calibrated: CalibratedScan, lut: MaterialLut) -> tuple[F32, U8, npt.NDArray[np.uint16]]:
    """``(zeff, material class, zeff/colour bin)`` per pixel of a calibrated scan."""
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
    ih, ir = lut.indices(sm_h, sm_l)
    zq = lut_zeff_quantised(lut)[ih, ir]  # uint8, Zeff / 0.25
    material = _CLASS_TABLE[zq]
    zbin = zq.astype(np.uint16)
    background = (sm_h + sm_l) < np.float32(2 * BACKGROUND_ATTENUATION)
    impenetrable = sm_h > np.float32(IMPENETRABLE_ATTENUATION)
    material[background] = MaterialClass.BACKGROUND
    material[impenetrable] = MaterialClass.IMPENETRABLE
    zbin[background] = BACKGROUND_BIN
    zbin[impenetrable] = IMPENETRABLE_BIN
    zeff = _ZQ_TO_ZEFF[zq]
    zeff[background | impenetrable] = 0.0
    return zeff, material, zbin


_ZQ_CACHE: dict[int, npt.NDArray[np.uint8]] = {}


def lut_zeff_quantised(lut: MaterialLut) -> npt.NDArray[np.uint8]:
    """The LUT's Zeff table quantised to 0.25 steps as uint8 (cached per LUT)."""
    key = id(lut.zeff)
    cached = _ZQ_CACHE.get(key)
    if cached is None:
        cached = np.clip(np.rint(lut.zeff / ZEFF_STEP), 0, ZEFF_BINS - 1).astype(np.uint8)
        _ZQ_CACHE[key] = cached
    return cached


def render_pseudocolour(
    attenuation_high: F32, attenuation_low: F32, zbin: npt.NDArray[np.uint16], palette: Palette = DEFAULT_PALETTE
) -> U8:
    """RGB image from attenuations and colour bins (see :func:`material_maps`) in a palette."""
    w = np.float32(palette.low_weight)
    fused = attenuation_low * (-w) - attenuation_high * (np.float32(1.0) - w)
    m = np.exp(fused)
    m_bin = np.clip(m * np.float32(M_BINS), 0, M_BINS - 1).astype(np.uint16)
    index = zbin.astype(np.int32) * M_BINS + m_bin
    table = palette.table()
    return np.asarray(table[index], dtype=np.uint8)


def render(calibrated: CalibratedScan, lut: MaterialLut, palette: Palette = DEFAULT_PALETTE) -> RenderedScan:
    """Material maps and the pseudo-colour image of a calibrated scan."""
    zeff, material, zbin = material_maps(calibrated, lut)
    rgb = render_pseudocolour(calibrated.attenuation_high, calibrated.attenuation_low, zbin, palette)
    return RenderedScan(
        rgb=rgb,
        attenuation_high=calibrated.attenuation_high,
        attenuation_low=calibrated.attenuation_low,
        zeff=zeff,
        material=material,
    )
