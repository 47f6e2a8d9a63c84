"""Material lookup: (a_H, R = a_L / a_H) -> effective Z and areal density, built from step wedges.

Reference curves: hydrogenous organics (polyethylene Z 5.44, cellulose 6.89, water 7.42: parcels are
mostly such materials, and their mass attenuation per gram differs from pure C/N/O) and the elements
Z = 9..32. For each, the noise-free forward model of the configured spectrum gives the
curve ``(a_H(x), a_L(x))`` over areal densities ``x`` from 5 mg/cm^2 to 400 g/cm^2 (the H-L /
alpha-curve method, reference doc 7.3). At every a_H bin, R of each element is interpolated and
Zeff (and the areal density of the matching element) is interpolated across Z. Polychromatic R
falls with thickness (beam hardening), so a 2-D table is needed: fixed R thresholds fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smartscreen.imaging.materials import MATERIALS, element_mass_attenuation, mass_attenuation
from smartscreen.imaging.scanner import ScannerParams
from smartscreen.imaging.spectrum import spectral_model

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

LUT_ORGANICS = ("polyethylene", "cellulose", "water")
LUT_ELEMENT_MIN = 9
LUT_Z_MAX = 32
A_HIGH_MAX = 10.0
A_HIGH_BINS = 800
R_MIN = 0.6
R_MAX = 6.0
R_BINS = 540


@dataclass(frozen=True, slots=True)
class MaterialLut:
    """2-D material lookup tables over (a_H bin, R bin).

    Attributes:
        zeff: effective atomic number, float32 ``(A_HIGH_BINS, R_BINS)``.
        areal_g_cm2: areal density of the element that matches, float32, same shape.
        a_high_step: bin width of a_H; bin ``i`` covers ``[i, i + 1) * a_high_step``.
        r_min, r_step: R axis origin and bin width.
        spectral_key: the scanner spectral parameters the table was built for.
    """

    zeff: F32
    areal_g_cm2: F32
    a_high_step: float
    r_min: float
    r_step: float
    spectral_key: tuple[float, ...]

    @classmethod
    def for_spectrum(cls, params: ScannerParams) -> MaterialLut:
        """The LUT for a scanner's spectrum and detector (built once per configuration and cached in memory)."""
        return _build_lut(params.spectral_key(), params)

    def lookup(self, a_high: F32, a_low: F32) -> tuple[F32, F32]:
        """Per-pixel ``(zeff, areal_g_cm2)`` for attenuation maps (any shape)."""
        ih, ir = self.indices(a_high, a_low)
        return self.zeff[ih, ir], self.areal_g_cm2[ih, ir]

    def indices(self, a_high: F32, a_low: F32) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        n_h, n_r = self.zeff.shape
        safe_h = np.maximum(a_high, np.float32(1e-3))
        r = a_low / safe_h
        ih = np.clip((a_high * np.float32(1.0 / self.a_high_step)).astype(np.intp), 0, n_h - 1)
        ir = np.clip(((r - np.float32(self.r_min)) * np.float32(1.0 / self.r_step)).astype(np.intp), 0, n_r - 1)
        return ih, ir


def reference_curves(energies_kev: F64) -> tuple[F64, F64]:
    """``(zeff, mu_rho)`` of the LUT's reference materials: ``(n,)`` increasing Zeff, ``(n, n_energies)`` cm^2/g."""
    zs = [MATERIALS[name].zeff for name in LUT_ORGANICS] + list(range(LUT_ELEMENT_MIN, LUT_Z_MAX + 1))
    mus = [mass_attenuation(name, energies_kev) for name in LUT_ORGANICS]
    mus += [element_mass_attenuation(z, energies_kev) for z in range(LUT_ELEMENT_MIN, LUT_Z_MAX + 1)]
    return np.asarray(zs, dtype=np.float64), np.stack(mus)


def element_curves(params: ScannerParams, areal_g_cm2: F64) -> tuple[F64, F64, F64]:
    """Noise-free ``(zeff, a_low, a_high)`` of the reference curves; attenuations are ``(n_curves, n_thickness)``."""
    model = spectral_model(params)
    e = model.energies_kev
    w_low = model.mean_low / model.mean_low.sum()
    w_high = model.mean_high / model.mean_high.sum()
    zs, mus = reference_curves(e)
    a_low = np.empty((zs.size, areal_g_cm2.size))
    a_high = np.empty_like(a_low)
    for i in range(zs.size):
        transmission = np.exp(-np.outer(areal_g_cm2, mus[i]))  # (X, E)
        a_low[i] = -np.log(np.maximum(transmission @ w_low, 1e-300))
        a_high[i] = -np.log(np.maximum(transmission @ w_high, 1e-300))
    return zs, a_low, a_high


_LUT_CACHE: dict[tuple[float, ...], MaterialLut] = {}
_LUT_CACHE_SIZE = 64


def _build_lut(key: tuple[float, ...], params: ScannerParams) -> MaterialLut:
    cached = _LUT_CACHE.get(key)
    if cached is not None:
        return cached
    thickness = np.geomspace(0.005, 400.0, 220)
    zs, a_low, a_high = element_curves(params, thickness)
    step_h = A_HIGH_MAX / A_HIGH_BINS
    step_r = (R_MAX - R_MIN) / R_BINS
    h_centres = (np.arange(A_HIGH_BINS) + 0.5) * step_h
    r_centres = R_MIN + (np.arange(R_BINS) + 0.5) * step_r
    # R and areal density of every element curve at every a_H bin centre: (n_z, n_h)
    r_of_z = np.stack([np.interp(h_centres, a_high[i], a_low[i] / a_high[i]) for i in range(zs.size)])
    x_of_z = np.stack([np.interp(h_centres, a_high[i], thickness) for i in range(zs.size)])
    # R increases with Z (no K edge of these elements in the band); enforce it for interpolation
    r_of_z = np.maximum.accumulate(r_of_z + np.arange(zs.size)[:, None] * 1e-9, axis=0)
    zeff = np.empty((A_HIGH_BINS, R_BINS), dtype=np.float32)
    areal = np.empty_like(zeff)
    for j in range(A_HIGH_BINS):
        zeff[j] = np.interp(r_centres, r_of_z[:, j], zs)
        areal[j] = np.interp(r_centres, r_of_z[:, j], x_of_z[:, j])
    zeff.setflags(write=False)
    areal.setflags(write=False)
    lut = MaterialLut(zeff=zeff, areal_g_cm2=areal, a_high_step=step_h, r_min=R_MIN, r_step=step_r, spectral_key=key)
    if len(_LUT_CACHE) >= _LUT_CACHE_SIZE:
        _LUT_CACHE.pop(next(iter(_LUT_CACHE)))
    _LUT_CACHE[key] = lut
    return lut
