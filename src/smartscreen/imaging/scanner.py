"""Scanner parameters: tube, filtration, sandwich detector, geometry, electronics and noise.

Defaults follow ``shared/reference/dual-energy-physics.md`` section 9 (bold values), except the
belt speed and tube current, which are set for an express sorting line (2.5 m/s belt; a higher-power
tube keeps the photon count per pixel near that of a 0.2 m/s cabinet scanner at 1 mA).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

# reference fluence of a W tube at 160 kVp behind 2 mm Al: photons / cm^2 / mAs at 1 m (SpekPy, reference doc 3.1)
REFERENCE_FLUENCE_PER_MAS_CM2 = 7.0e8


@dataclass(frozen=True, slots=True)
class ScannerParams:
    """Everything the forward model, the material LUT and the calibration need to know about a scanner."""

    scanner_id: str = "sim-0"
    # source
    kvp: float = 160.0
    tube_current_ma: float = 8.0
    filtration_al_mm: float = 2.0
    anode_self_filtration_um: float = 6.0
    # sandwich detector: front CsI (LE), Cu filter, rear CsI (HE)
    le_csi_mm: float = 0.3
    filter_cu_mm: float = 0.5
    he_csi_mm: float = 4.0
    # fixed filtration in the tunnel (divided out by the air calibration but shaping the spectrum)
    belt_pvc_mm: float = 2.0
    cover_al_mm: float = 0.5
    # geometry
    channels: int = 1024
    channel_pitch_mm: float = 1.6
    line_pitch_mm: float = 1.6
    belt_speed_mm_s: float = 2500.0
    source_detector_m: float = 1.0
    magnification: float = 1.3  # fan-beam magnification across the belt at mid-parcel height
    # electronics
    bit_depth: int = 16
    air_level_fraction: float = 0.75
    dark_offset_adu: float = 1200.0
    dark_spread: float = 0.10
    read_noise_adu: float = 5.0
    gain_spread: float = 0.05
    bad_pixel_fraction: float = 0.002
    dose_factor: float = 1.0
    ripple: float = 0.003
    psf_sigma_px: float = 0.45
    misregistration_px: float = 0.2

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, bool], ...] = (
            ("kvp must be within 60-200", 60.0 <= self.kvp <= 200.0),
            ("channels must be 16-8192", 16 <= self.channels <= 8192),
            ("bit_depth must be 12-16", 12 <= self.bit_depth <= 16),
            ("pitches must be positive", self.channel_pitch_mm > 0 and self.line_pitch_mm > 0),
            ("belt_speed_mm_s must be positive", self.belt_speed_mm_s > 0),
            ("air_level_fraction must be in (0, 1)", 0.0 < self.air_level_fraction < 1.0),
            ("bad_pixel_fraction must be in [0, 0.2]", 0.0 <= self.bad_pixel_fraction <= 0.2),
            (
                "filtration and layer thicknesses must be non-negative",
                min(self.filtration_al_mm, self.filter_cu_mm, self.le_csi_mm, self.he_csi_mm) >= 0,
            ),
            ("magnification must be >= 1", self.magnification >= 1.0),
        )
        for message, ok in checks:
            if not ok:
                raise ValueError(f"ScannerParams: {message}")

    @property
    def full_scale_adu(self) -> int:
        return int(2**self.bit_depth - 1)

    @property
    def line_period_s(self) -> float:
        return self.line_pitch_mm / self.belt_speed_mm_s

    @property
    def line_rate_hz(self) -> float:
        return self.belt_speed_mm_s / self.line_pitch_mm

    @property
    def object_pixel_mm(self) -> tuple[float, float]:
        """Pixel size in the object plane: (along the belt, across the belt)."""
        return (self.line_pitch_mm, self.channel_pitch_mm / self.magnification)

    def spectral_key(self) -> tuple[float, ...]:
        """The parameters that fix the spectrum and detector response (what the material LUT depends on)."""
        return (
            round(self.kvp, 3),
            round(self.filtration_al_mm, 4),
            round(self.anode_self_filtration_um, 3),
            round(self.le_csi_mm, 4),
            round(self.filter_cu_mm, 4),
            round(self.he_csi_mm, 4),
            round(self.belt_pvc_mm, 4),
            round(self.cover_al_mm, 4),
        )

    def replace(self, **changes: Any) -> ScannerParams:
        return dataclasses.replace(self, **changes)

    def to_meta(self) -> dict[str, float | int | str]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_geometry(
        cls, geometry: Any, belt_speed_mm_s: float | None = None, scanner_id: str = "line", **overrides: Any
    ) -> ScannerParams:
        """Parameters from a line's ``ScannerGeometryConfig`` (channels, pitches, kVp) and belt speed.

        Use the same call on both ends (emulated scanner and imaging chain) so the material LUT
        matches the spectrum the scans were taken with.
        """
        values: dict[str, Any] = {
            "channels": int(geometry.channels),
            "channel_pitch_mm": float(geometry.channel_pitch_mm),
            "line_pitch_mm": float(geometry.line_pitch_mm),
            "kvp": float(geometry.kvp),
            "scanner_id": scanner_id,
        }
        if belt_speed_mm_s is not None:
            values["belt_speed_mm_s"] = float(belt_speed_mm_s)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ScannerParams:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in meta.items() if k in names})


@dataclass(frozen=True, slots=True)
class ScannerRandomisation:
    """Ranges to draw scanner parameters from per scan (sim-to-real domain randomisation)."""

    kvp: tuple[float, float] = (160.0, 160.0)
    filtration_al_mm: tuple[float, float] = (2.0, 2.0)
    filter_cu_mm: tuple[float, float] = (0.5, 0.5)
    le_csi_mm: tuple[float, float] = (0.3, 0.3)
    he_csi_mm: tuple[float, float] = (4.0, 4.0)
    pitch_mm: tuple[float, ...] = (1.6,)
    channels: tuple[int, ...] = (1024,)
    dose_factor: tuple[float, float] = (1.0, 1.0)
    read_noise_adu: tuple[float, float] = (5.0, 5.0)
    gain_spread: tuple[float, float] = (0.05, 0.05)
    bad_pixel_fraction: tuple[float, float] = (0.002, 0.002)
    psf_sigma_px: tuple[float, float] = (0.45, 0.45)
    magnification: tuple[float, float] = (1.3, 1.3)
    belt_speed_mm_s: tuple[float, float] | None = None  # None: keep the base scanner's speed
    line_pitch_ratio: tuple[float, float] = (1.0, 1.0)  # line pitch / channel pitch (pixel aspect along the belt)
    kvp_step: float = 10.0  # kVp is drawn on this grid so material LUTs can be cached

    def draw(self, base: ScannerParams, rng: np.random.Generator) -> ScannerParams:
        def uniform(bounds: tuple[float, float]) -> float:
            return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])

        def grid(bounds: tuple[float, float], step: float) -> float:
            value = uniform(bounds)
            return float(np.clip(round(value / step) * step, bounds[0], bounds[1])) if step > 0 else value

        pitch = float(self.pitch_mm[int(rng.integers(len(self.pitch_mm)))])
        return base.replace(
            kvp=grid(self.kvp, self.kvp_step),
            filtration_al_mm=grid(self.filtration_al_mm, 0.5),
            filter_cu_mm=grid(self.filter_cu_mm, 0.1),
            le_csi_mm=grid(self.le_csi_mm, 0.1),
            he_csi_mm=grid(self.he_csi_mm, 0.5),
            channel_pitch_mm=pitch,
            line_pitch_mm=round(pitch * uniform(self.line_pitch_ratio), 4),
            channels=int(self.channels[int(rng.integers(len(self.channels)))]),
            dose_factor=uniform(self.dose_factor),
            read_noise_adu=uniform(self.read_noise_adu),
            gain_spread=uniform(self.gain_spread),
            bad_pixel_fraction=uniform(self.bad_pixel_fraction),
            psf_sigma_px=uniform(self.psf_sigma_px),
            magnification=uniform(self.magnification),
            belt_speed_mm_s=uniform(self.belt_speed_mm_s) if self.belt_speed_mm_s else base.belt_speed_mm_s,
        )
