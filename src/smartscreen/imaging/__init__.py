"""Dual-energy imaging: forward model, parcel simulator, calibration, material discrimination, pseudo-colour.

Public API (stable names):

- :class:`ScannerParams` / :class:`ScannerRandomisation` - scanner description and per-scan randomisation.
- :func:`calibrate`, :class:`Calibration`, :class:`CalibratedScan` - dark/air correction, bad pixels, log attenuation.
- :class:`MaterialLut` - (a_H, R) -> Zeff and areal density, built from xraydb step wedges.
- :func:`render`, :func:`render_pseudocolour`, :class:`Palette`, :data:`PALETTES`, :func:`random_palette`.
- :class:`ImagingChain` - ``process(high, low) -> RenderedScan`` at line rate; :func:`content_box`, :func:`estimate_mass_g`.
- :class:`ParcelSimulator`, :class:`SimulatedParcel`, :class:`PlacedObject` - simulated raw scans with ground truth.
- :func:`project_threat` - threat image projection into a real clean scan, in material space.
- :func:`read_raw_scan`, :func:`write_raw_scan`, :class:`RawScan` - the ``.npz`` raw format.
"""

from smartscreen.imaging.calibration import CalibratedScan, Calibration, calibrate, detect_bad_pixels
from smartscreen.imaging.chain import ImagingChain, areal_density_map, content_box, estimate_mass_g
from smartscreen.imaging.lut import MaterialLut
from smartscreen.imaging.palette import DEFAULT_PALETTE, PALETTES, Palette, random_palette
from smartscreen.imaging.rawio import RawScan, raw_meta, read_raw_scan, write_raw_scan
from smartscreen.imaging.render import material_maps, render, render_pseudocolour
from smartscreen.imaging.scanner import ScannerParams, ScannerRandomisation
from smartscreen.imaging.simulator import ParcelSimulator, PlacedObject, SimulatedParcel
from smartscreen.imaging.tip import project_threat

__all__ = [
    "DEFAULT_PALETTE",
    "PALETTES",
    "CalibratedScan",
    "Calibration",
    "ImagingChain",
    "MaterialLut",
    "Palette",
    "ParcelSimulator",
    "PlacedObject",
    "RawScan",
    "ScannerParams",
    "ScannerRandomisation",
    "SimulatedParcel",
    "areal_density_map",
    "calibrate",
    "content_box",
    "detect_bad_pixels",
    "estimate_mass_g",
    "material_maps",
    "project_threat",
    "random_palette",
    "raw_meta",
    "read_raw_scan",
    "render",
    "render_pseudocolour",
    "write_raw_scan",
]
