"""Emulated hardware for ``sim://`` lines: scanner and I/O board (``firmware_bridge``) on loopback,
fed with simulated parcels (``smartscreen.imaging``), and an emulated PLC that tracks the same belt.

``sim://?seed=7&threat_rate=0.2`` options: ``seed``, ``threat_rate`` (share of parcels with
threats), ``parcels`` (distinct simulated parcels, cycled), ``loss`` (GVSP packet loss),
``noread`` / ``multiread`` / ``unknown`` (barcode no-read, multi-read and unknown-waybill rates),
``min_gap_mm`` / ``max_gap_mm``, ``io`` (``pty`` or ``tcp``), ``repeat`` (1: cycle forever).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import numpy as np
import numpy.typing as npt

from firmware_bridge.belt_plan import BeltPlan, PlannedParcel
from firmware_bridge.emulate import EmulatedLine
from firmware_bridge.scanner_emulator import FaultConfig
from smartscreen.config import LineConfig
from smartscreen.errors import ConfigError
from smartscreen.gate.plc import EmulatedPlc
from smartscreen.imaging.scanner import ScannerParams

logger = logging.getLogger(__name__)

MIN_PARCEL_MM = 300.0
MAX_PARCEL_MM = 800.0


@dataclass(frozen=True, slots=True)
class SimOptions:
    seed: int = 0
    threat_rate: float = 0.2
    parcels: int = 8
    loss: float = 0.0
    noread: float = 0.02
    multiread: float = 0.01
    unknown: float = 0.02
    min_gap_mm: float = 200.0
    max_gap_mm: float = 500.0
    io: str = "pty"
    repeat: bool = True

    @classmethod
    def from_url(cls, url: str) -> SimOptions:
        parts = urlsplit(url)
        if parts.scheme != "sim":
            raise ConfigError(f"not a sim:// URL: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(query) - known)
        if unknown:
            raise ConfigError(f"{url}: unknown sim options {unknown}; known: {sorted(known)}")
        values: dict[str, object] = {}
        try:
            for key, raw in query.items():
                default = getattr(cls(), key)
                if isinstance(default, bool):
                    values[key] = raw.lower() in ("1", "true", "yes")
                elif isinstance(default, int):
                    values[key] = int(raw)
                elif isinstance(default, float):
                    values[key] = float(raw)
                else:
                    values[key] = raw
        except ValueError as e:
            raise ConfigError(f"{url}: bad sim option value: {e}") from e
        return cls(**values)  # type: ignore[arg-type]


def scanner_params(line: LineConfig) -> ScannerParams:
    g = line.geometry
    return ScannerParams(
        scanner_id=line.id,
        kvp=g.kvp,
        channels=g.channels,
        channel_pitch_mm=g.channel_pitch_mm,
        line_pitch_mm=g.line_pitch_mm,
        belt_speed_mm_s=line.belt_speed_mm_s,
    )


@dataclass(frozen=True, slots=True)
class SimulatedBelt:
    plan: BeltPlan
    threat_flags: tuple[bool, ...]  # per plan parcel: it carries a threat
    threat_classes: tuple[tuple[str, ...], ...]


def simulate_belt(line: LineConfig, options: SimOptions, tracking_numbers: tuple[str, ...]) -> SimulatedBelt:
    """Simulated parcels (0.3-0.8 m long) with barcodes and gaps, as one shared belt plan."""
    from smartscreen.imaging.simulator import ParcelSimulator

    params = scanner_params(line)
    rng = np.random.default_rng(options.seed)
    sim = ParcelSimulator(params, np.random.default_rng(options.seed + 1))
    pitch = params.line_pitch_mm
    parcels: list[PlannedParcel] = []
    flags: list[bool] = []
    classes: list[tuple[str, ...]] = []
    air_h, air_l = sim.air_lines(64)
    # waybills are drawn without replacement: one label on two parcels a few metres apart is a real
    # MISMATCH the associator must flag, so the emulated belt must not create it by chance
    label_order = np.random.default_rng(options.seed + 2).permutation(max(len(tracking_numbers), 1))
    for i in range(options.parcels):
        threat = bool(rng.random() < options.threat_rate)
        simulated = sim.simulate(1.0 if threat else 0.0)
        _, y0, _, y1 = simulated.parcel_box_xyxy
        high, low = fit_length(simulated.high[y0:y1], simulated.low[y0:y1], pitch, air_h, air_l, rng)
        codes = draw_barcodes(i, rng, options, tracking_numbers, label_order)
        gap = float(rng.uniform(options.min_gap_mm, options.max_gap_mm))
        parcels.append(PlannedParcel(_u16(high), _u16(low), codes, gap))
        flags.append(bool(simulated.threats))
        classes.append(tuple(t.kind for t in simulated.threats))
    dark_h, dark_l = sim.dark_lines(64)
    plan = belt_plan(
        line, options, parcels, (_mean_row(air_h), _mean_row(air_l)), (_mean_row(dark_h), _mean_row(dark_l))
    )
    return SimulatedBelt(plan, tuple(flags), tuple(classes))


def fit_length(
    high: npt.NDArray[np.uint16],
    low: npt.NDArray[np.uint16],
    pitch_mm: float,
    air_high: npt.NDArray[np.uint16],
    air_low: npt.NDArray[np.uint16],
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """Cut a scan to at most MAX_PARCEL_MM (keeping its middle), pad it with air lines to MIN_PARCEL_MM."""
    max_lines = int(MAX_PARCEL_MM / pitch_mm)
    if high.shape[0] > max_lines:
        cut = (high.shape[0] - max_lines) // 2
        high, low = high[cut : cut + max_lines], low[cut : cut + max_lines]
    min_lines = int(np.ceil(MIN_PARCEL_MM / pitch_mm))
    if high.shape[0] < min_lines:
        idx = rng.integers(0, air_high.shape[0], size=min_lines - high.shape[0])
        high = np.concatenate([high, air_high[idx]])
        low = np.concatenate([low, air_low[idx]])
    return high, low


def draw_barcodes(
    i: int,
    rng: np.random.Generator,
    options: SimOptions,
    tracking_numbers: tuple[str, ...],
    label_order: npt.NDArray[np.int64],
) -> tuple[str, ...]:
    """The labels the barcode reader reports for parcel ``i``: no-read, multi-read, unknown or one waybill."""
    roll = rng.random()
    if roll < options.noread:
        return ()
    if roll < options.noread + options.multiread and len(tracking_numbers) > 1:
        return (
            tracking_numbers[(2 * i) % len(tracking_numbers)],
            tracking_numbers[(2 * i + 1) % len(tracking_numbers)],
        )
    if roll < options.noread + options.multiread + options.unknown or not tracking_numbers:
        return (f"ZZ{options.seed:03d}{i:07d}",)
    return (tracking_numbers[int(label_order[i % len(label_order)])],)


def belt_plan(
    line: LineConfig,
    options: SimOptions,
    parcels: list[PlannedParcel],
    air: tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]],
    dark: tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]],
) -> BeltPlan:
    """The belt plan of one emulated line: its parcels, calibration rows and the line's geometry."""
    return BeltPlan(
        parcels=tuple(parcels),
        air_high=air[0],
        air_low=air[1],
        dark_high=dark[0],
        dark_low=dark[1],
        belt_speed_mm_s=line.belt_speed_mm_s,
        line_pitch_mm=line.geometry.line_pitch_mm,
        encoder_counts_per_mm=1.0 / line.encoder_mm_per_count,
        eye_to_scan_mm=line.eye_to_scan_mm,
        barcode_to_eye_mm=line.barcode_to_scanner_mm,
        scan_to_gate_mm=line.scanner_to_gate_mm,
        trailing_gap_mm=options.max_gap_mm,
    )


def _u16(a: npt.NDArray[np.generic]) -> npt.NDArray[np.uint16]:
    out: npt.NDArray[np.uint16] = np.ascontiguousarray(a, dtype=np.uint16)
    return out


def _mean_row(lines: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint16]:
    out: npt.NDArray[np.uint16] = np.round(lines.astype(np.float64).mean(axis=0)).astype(np.uint16)
    return out


class PlcTracker:
    """The emulated PLC's own infeed: tracks every parcel group of the plan as it enters the tunnel.

    Uses the plan and the belt clock only (never the line runtime), so a parcel the runtime
    never saw still reaches the PLC's gate and is rejected by default.
    """

    def __init__(self, emulated: EmulatedLine, plc: EmulatedPlc, repeat: bool) -> None:
        self._emu = emulated
        self._plc = plc
        self._repeat = repeat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plc-infeed", daemon=True)
        plan = emulated.plan
        events = [ev for ev in plan.events() if ev.kind == "eye_blocked"]
        self._groups = max((ev.group for ev in plan.events()), default=-1) + 1
        self._entries = [(ev.group, ev.encoder_counts) for ev in events]
        self._cycle_counts = round(plan.n_lines * plan.counts_per_line)
        self._counts_per_ns = plan.encoder_counts_per_mm * plan.belt_speed_mm_s / 1e9

    def start(self) -> PlcTracker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        clock = self._emu.clock
        while not self._stop.is_set() and not clock.wait_started(0.05):
            pass
        cycle = 0
        while not self._stop.is_set():
            for group, counts in self._entries:
                offset_ns = round((counts + cycle * self._cycle_counts) / self._counts_per_ns)
                # tell the PLC a little ahead of the entry (its infeed is upstream of the tunnel)
                while not self._stop.is_set() and clock.elapsed_ns() < offset_ns - 200_000_000:
                    self._stop.wait(0.02)
                if self._stop.is_set():
                    return
                self._plc.track(cycle * self._groups + group + 1, clock.wall_ns(offset_ns))
            if not self._repeat:
                return
            cycle += 1


class EmulatedSite:
    """Everything emulated for one line: belt plan, scanner + I/O board emulators, optional PLC."""

    def __init__(
        self,
        line: LineConfig,
        options: SimOptions,
        tracking_numbers: tuple[str, ...],
        *,
        with_plc: bool,
        belt: SimulatedBelt | None = None,
    ) -> None:
        self.line = line
        self.options = options
        self.belt = belt or simulate_belt(line, options, tracking_numbers)
        self.emulated = EmulatedLine(
            self.belt.plan,
            io_transport=options.io,
            faults=FaultConfig(loss=options.loss, seed=options.seed) if options.loss else None,
            repeat=options.repeat,
        )
        self.plc: EmulatedPlc | None = None
        self._tracker: PlcTracker | None = None
        if with_plc:
            self.plc = EmulatedPlc(
                scanner_to_gate_mm=line.eye_to_scan_mm + line.scanner_to_gate_mm,
                belt_speed_mm_s=line.belt_speed_mm_s,
                actuator_ms=20.0,
            )
            self._tracker = PlcTracker(self.emulated, self.plc, options.repeat)

    @property
    def scanner_url(self) -> str:
        return self.emulated.scanner_url

    @property
    def io_url(self) -> str:
        return self.emulated.io_url

    def start(self) -> EmulatedSite:
        self.emulated.start()
        if self.plc is not None and self._tracker is not None:
            self.plc.start()
            self._tracker.start()
        return self

    def stop(self) -> None:
        if self._tracker is not None:
            self._tracker.stop()
        if self.plc is not None:
            self.plc.stop()
        self.emulated.stop()
