"""Threat image projection (TIP) into real clean scans, in material space.

Recipe B of the reference (dual-energy-physics.md 10.3): each pixel of the clean scan is
decomposed into an equivalent element and areal density through the material LUT (the H-L
curves of the scanner's spectrum); the threat's areal-density maps are added; both channels are
re-projected through the polychromatic forward model; the measured counts are scaled by the
ratio of new to old expected signal and re-noised so the final noise matches the new signal
level. Rendered or calibrated images are never multiplied together.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from smartscreen.domain.render import MaterialClass
from smartscreen.imaging.calibration import CalibratedScan, Calibration, calibrate
from smartscreen.imaging.forward import SpectralForward
from smartscreen.imaging.lut import MaterialLut, reference_curves
from smartscreen.imaging.objects import make_threat
from smartscreen.imaging.render import IMPENETRABLE_ATTENUATION, material_maps
from smartscreen.imaging.scanner import ScannerParams
from smartscreen.imaging.shapes import Canvas, Patch, Pose

U16 = npt.NDArray[np.uint16]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

_VISIBLE_A_HIGH = 0.02


def project_threat(
    high: U16,
    low: U16,
    calibration: Calibration,
    threat_class_name: str,
    rng: np.random.Generator,
    *,
    params: ScannerParams | None = None,
    centre_yx: tuple[int, int] | None = None,
    angle_rad: float | None = None,
    scale: float = 1.0,
) -> tuple[U16, U16, tuple[int, int, int, int]]:
    """Insert a fictional threat of class ``threat_class_name`` into a clean raw scan.

    Args:
        high, low: raw counts ``(n_lines, n_channels)`` of a clean parcel.
        calibration: the scan's dark/air references.
        threat_class_name: a taxonomy class name.
        rng: randomness for the threat's shape, pose and the added noise.
        params: scanner parameters (spectrum and pitches); defaults to :class:`ScannerParams` with the
            scan's channel count. Pass ``RawScan.scanner_params()`` for stored scans.
        centre_yx: where to put the threat's centre (line, channel); default: a random pixel of the parcel.
        angle_rad, scale: pose of the threat; random angle by default.

    Returns:
        ``(high, low, box_xyxy)``: new raw counts and the threat's box in scan pixels (exclusive max).
    """
    calibrated = calibrate(high, low, calibration)
    base = params or ScannerParams()
    if base.channels != high.shape[1]:
        base = base.replace(channels=int(high.shape[1]))
    forward = SpectralForward(base)
    lut = MaterialLut.for_spectrum(base)
    model = make_threat(threat_class_name, rng)

    n_lines, n_channels = high.shape
    pix = base.object_pixel_mm
    if centre_yx is None:
        _, material, _ = material_maps(calibrated, lut)
        parcel = np.argwhere((material != MaterialClass.BACKGROUND) & (material != MaterialClass.IMPENETRABLE))
        if parcel.size == 0:
            centre_yx = (n_lines // 2, n_channels // 2)
        else:
            pick = parcel[int(rng.integers(len(parcel)))]
            centre_yx = (int(pick[0]), int(pick[1]))
    angle = float(rng.uniform(-math.pi, math.pi)) if angle_rad is None else angle_rad
    cu, cv = model.centre_uv()
    ca, sa = math.cos(angle), math.sin(angle)
    row_mm = (centre_yx[0] + 0.5) * pix[0] - scale * (cu * ca - cv * sa)
    col_mm = (centre_yx[1] + 0.5) * pix[1] - scale * (cu * sa + cv * ca)
    canvas = Canvas((n_lines, n_channels), pix)
    patches = model.rasterise(canvas, Pose(row_mm, col_mm, angle, scale), rng)
    mu_h = {p.material: _mu_at(forward, p.material, 88.0) for p in patches}
    box = _box(patches, mu_h)
    if box is None:
        raise ValueError(f"the {threat_class_name} placed at {centre_yx} falls outside the scan")
    canvas.add_all(patches)
    x0, y0, x1, y1 = box
    pad = 3
    rs = slice(max(0, y0 - pad), min(n_lines, y1 + pad))
    cs = slice(max(0, x0 - pad), min(n_channels, x1 + pad))
    threat_maps = {name: m[rs, cs] for name, m in canvas.maps.items()}
    new_high, new_low = high.copy(), low.copy()
    _reproject(new_high, new_low, calibrated, calibration, rs, cs, threat_maps, forward, lut, rng)
    return new_high, new_low, box


def _mu_at(forward: SpectralForward, material: str, energy_kev: float) -> float:
    e = forward.model.energies_kev
    return float(np.interp(energy_kev, e, forward.mu(material)))


def _box(patches: list[Patch], mu_h: dict[str, float]) -> tuple[int, int, int, int] | None:
    r0 = c0 = 1 << 30
    r1 = c1 = -1
    for p in patches:
        visible = p.areal * np.float32(mu_h[p.material]) >= _VISIBLE_A_HIGH
        if not visible.any():
            continue
        rows = np.flatnonzero(visible.any(axis=1))
        cols = np.flatnonzero(visible.any(axis=0))
        r0, r1 = min(r0, p.row0 + int(rows[0])), max(r1, p.row0 + int(rows[-1]) + 1)
        c0, c1 = min(c0, p.col0 + int(cols[0])), max(c1, p.col0 + int(cols[-1]) + 1)
    if r1 < 0:
        return None
    return (c0, r0, c1, r1)


def _reproject(
    high: U16,
    low: U16,
    calibrated: CalibratedScan,
    calibration: Calibration,
    rs: slice,
    cs: slice,
    threat_maps: dict[str, F32],
    forward: SpectralForward,
    lut: MaterialLut,
    rng: np.random.Generator,
) -> None:
    """Re-form counts in the window (rs, cs) with the threat's areal densities added."""
    a_h = calibrated.attenuation_high
    a_l = calibrated.attenuation_low
    # denoised background for the decomposition (noise stays in the measured counts)
    sm_h = np.asarray(cv2.blur(a_h, (3, 3), borderType=cv2.BORDER_REPLICATE), dtype=np.float32)[rs, cs]
    sm_l = np.asarray(cv2.blur(a_l, (3, 3), borderType=cv2.BORDER_REPLICATE), dtype=np.float32)[rs, cs]
    zeff, areal = lut.lookup(sm_h, sm_l)
    background = (sm_h + sm_l) < 0.02
    areal = np.where(background, 0.0, areal).astype(np.float64)
    opaque = sm_h > IMPENETRABLE_ATTENUATION
    e = forward.model.energies_kev
    curve_z, curve_mu = reference_curves(e)  # the LUT's own reference materials
    z = np.clip(zeff.astype(np.float64).reshape(-1), curve_z[0], curve_z[-1])
    i0 = np.clip(np.searchsorted(curve_z, z, side="right") - 1, 0, curve_z.size - 2)
    f = ((z - curve_z[i0]) / (curve_z[i0 + 1] - curve_z[i0]))[:, None]
    mu_bg = (1.0 - f) * curve_mu[i0] + f * curve_mu[i0 + 1]
    shape = sm_h.shape
    a_bg = areal.reshape(-1)[:, None] * mu_bg  # (P, E)
    a_threat = np.zeros_like(a_bg)
    for name, m in threat_maps.items():
        a_threat += m.astype(np.float64).reshape(-1)[:, None] * forward.mu(name).astype(np.float64)[None, :]
    w = forward._weights.astype(np.float64)  # (E, 4) mean_low, mean_high, var_low, var_high
    old = np.exp(-a_bg) @ w
    new = np.exp(-(a_bg + a_threat)) @ w
    ratio = np.where(old[:, :2] > 1e-30, new[:, :2] / np.maximum(old[:, :2], 1e-30), 0.0)
    for k, (counts, dark, air) in enumerate(
        ((low, calibration.dark_low, calibration.air_low), (high, calibration.dark_high, calibration.air_high))
    ):
        span = (air - dark)[cs].astype(np.float64)[None, :]
        r = ratio[:, k].reshape(shape)
        signal = counts[rs, cs].astype(np.float64) - dark[cs][None, :]
        var_new = new[:, 2 + k].reshape(shape)
        var_old = old[:, 2 + k].reshape(shape)
        extra = np.maximum(var_new - r * r * var_old, 0.0) * span * span
        noisy = signal * r + rng.standard_normal(shape) * np.sqrt(extra)
        out = np.clip(np.rint(noisy + dark[cs][None, :]), 0, calibration.full_scale_adu)
        out = np.where(opaque, counts[rs, cs], out)
        counts[rs, cs] = out.astype(np.uint16)
