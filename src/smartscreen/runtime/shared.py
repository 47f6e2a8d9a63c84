"""Stages shared by every line of a centre: detection batcher, journal, image store, waybills, policy, metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from smartscreen.detection.batcher import MicroBatcher
from smartscreen.domain.render import RenderedScan
from smartscreen.domain.scan import ParcelScan
from smartscreen.imaging.calibration import Calibration, calibrate
from smartscreen.imaging.lut import MaterialLut
from smartscreen.imaging.render import render
from smartscreen.imaging.scanner import ScannerParams
from smartscreen.journal import FsImageStore
from smartscreen.risk.policy import RiskPolicy
from smartscreen.runtime.journal_writer import JournalWriter
from smartscreen.runtime.metrics import LineMetrics
from smartscreen.runtime.waybill_stage import WaybillStage

logger = logging.getLogger(__name__)


class ImagingStage:
    """Calibration, material discrimination and pseudo-colour for one scanner type (LUT built once)."""

    def __init__(self, params: ScannerParams) -> None:
        self.params = params
        self.lut = MaterialLut.for_spectrum(params)
        self._mass = _mass_estimator()

    def render(self, high: object, low: object, calibration: Calibration) -> RenderedScan:
        return render(calibrate(high, low, calibration), self.lut)  # type: ignore[arg-type]

    def mass_g(self, rendered: RenderedScan, scan: ParcelScan) -> float | None:
        if self._mass is None:
            return None
        try:
            return float(
                self._mass(  # type: ignore[operator]
                    rendered,
                    self.lut,
                    self.params,
                    line_pitch_mm=scan.line_pitch_mm,
                    channel_pitch_mm=scan.channel_pitch_mm,
                )
            )
        except Exception:  # the weight check is advisory: without an estimate it is skipped, not failed
            logger.exception("mass estimate failed for %s", scan.parcel_id)
            return None


def _mass_estimator() -> object | None:
    try:
        from smartscreen.imaging import estimate_mass_g
    except ImportError:
        logger.warning("smartscreen.imaging.estimate_mass_g is not available: the weight check is off")
        return None
    return estimate_mass_g


@dataclass
class SharedStages:
    batcher: MicroBatcher
    journal: JournalWriter
    images: FsImageStore
    waybills: WaybillStage
    policy: RiskPolicy
    metrics: LineMetrics
