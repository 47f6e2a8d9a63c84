"""Recorded scans for ``replay://DIR`` lines: raw scans from disk on an emulated belt.

``replay://DIR`` plays every ``*.npz`` raw scan in ``DIR`` (the project's raw format,
``datasets/RAW_FORMAT.md``: what the line stores for each parcel, or ``smartscreen synth``'s
``raw/``) through the same scanner and I/O-board emulators as ``sim://``, so a centre can
re-screen recorded parcels with a new model or policy, and an integrator can test with scans
of a real scanner. ``replay:///abs/dir`` and ``replay://relative/dir`` both work; the query takes
the ``sim://`` options about the belt and the links (``seed``, ``loss``, ``noread``,
``multiread``, ``unknown``, ``min_gap_mm``, ``max_gap_mm``, ``io``, ``repeat``) and ``parcels``
(play at most this many files, in name order; default all).

Each file carries its own dark and air references. The belt has one calibration (the first
file's), so every other file is re-expressed in it through its transmission,
``counts' = dark0 + (counts - dark) / (air - dark) * (air0 - dark0)``: scans recorded under
another calibration, or on another scanner with the same channel count, replay correctly.
Leading and trailing air lines are trimmed; parcels are cut or padded to 0.3-0.8 m like
simulated ones. Whether a recorded parcel holds a threat is not known here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import numpy.typing as npt

from firmware_bridge.belt_plan import PlannedParcel
from smartscreen.config import LineConfig
from smartscreen.errors import ConfigError, SmartScreenError
from smartscreen.imaging.calibration import Calibration
from smartscreen.imaging.rawio import RawScan, read_raw_scan
from smartscreen.runtime.emulation import SimOptions, SimulatedBelt, belt_plan, draw_barcodes, fit_length

logger = logging.getLogger(__name__)

REPLAY_OPTIONS = frozenset(
    {"seed", "loss", "noread", "multiread", "unknown", "min_gap_mm", "max_gap_mm", "io", "repeat", "parcels"}
)
# a line is part of the parcel when some channel lets through less than this share of the air signal
CONTENT_TRANSMISSION = 0.9
TRIM_MARGIN_LINES = 4
MIN_CONTENT_PIXELS = 3


def replay_source(url: str) -> tuple[Path, SimOptions, int | None]:
    """``(directory, belt and link options, at most this many files or None)`` of a ``replay://`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "replay":
        raise ConfigError(f"not a replay:// URL: {url!r}")
    directory = Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)
    if not str(directory) or str(directory) == ".":
        raise ConfigError(f"{url}: say which directory to replay, e.g. replay:///var/lib/smartscreen/replay")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - REPLAY_OPTIONS)
    if unknown:
        raise ConfigError(f"{url}: unknown replay options {unknown}; known: {sorted(REPLAY_OPTIONS)}")
    limit: int | None = None
    if "parcels" in query:
        try:
            limit = int(query.pop("parcels")[-1])
        except ValueError as e:
            raise ConfigError(f"{url}: parcels must be a whole number: {e}") from e
        if limit < 1:
            raise ConfigError(f"{url}: parcels must be >= 1, got {limit}")
    sim_query = "&".join(f"{k}={v[-1]}" for k, v in query.items())
    return directory, SimOptions.from_url(f"sim://?{sim_query}"), limit


def replay_belt(line: LineConfig, url: str, tracking_numbers: tuple[str, ...]) -> SimulatedBelt:
    """The belt plan that plays the recorded scans of ``url`` on ``line``.

    Raises:
        ConfigError: no such directory, no ``.npz`` in it, a file that is not a readable raw scan,
            or a scan whose channel count differs from the line's geometry (named, with the fix).
    """
    directory, options, limit = replay_source(url)
    if not directory.is_dir():
        raise ConfigError(f"line {line.id}: replay directory {directory} does not exist")
    files = sorted(directory.glob("*.npz"))[:limit]
    if not files:
        raise ConfigError(f"line {line.id}: no .npz raw scans in {directory} (datasets/RAW_FORMAT.md)")
    scans: list[RawScan] = []
    for path in files:
        try:
            scan = read_raw_scan(path)
        except SmartScreenError as e:
            raise ConfigError(f"line {line.id}: cannot replay {path}: {e}") from e
        if scan.shape[1] != line.geometry.channels:
            raise ConfigError(
                f"line {line.id}: {path} has {scan.shape[1]} channels, the line's geometry says "
                f"{line.geometry.channels}: set geometry.channels to match the recording"
            )
        scans.append(scan)
    reference = scans[0].calibration
    rng = np.random.default_rng(options.seed)
    label_order = np.random.default_rng(options.seed + 2).permutation(max(len(tracking_numbers), 1))
    air_h, air_l = _rows(reference.air_high), _rows(reference.air_low)
    air_lines_h, air_lines_l = np.tile(air_h, (8, 1)), np.tile(air_l, (8, 1))
    parcels: list[PlannedParcel] = []
    for i, scan in enumerate(scans):
        high = _recalibrated(scan.high, scan.calibration, reference, "high")
        low = _recalibrated(scan.low, scan.calibration, reference, "low")
        rows = _content_rows(scan)
        if rows is None:
            logger.warning("line %s: %s holds no parcel (air only); replayed as it is", line.id, files[i].name)
        else:
            high, low = high[rows[0] : rows[1]], low[rows[0] : rows[1]]
        high, low = fit_length(high, low, line.geometry.line_pitch_mm, air_lines_h, air_lines_l, rng)
        codes = draw_barcodes(i, rng, options, tracking_numbers, label_order)
        gap = float(rng.uniform(options.min_gap_mm, options.max_gap_mm))
        parcels.append(PlannedParcel(high, low, codes, gap))
    plan = belt_plan(line, options, parcels, (air_h, air_l), (_rows(reference.dark_high), _rows(reference.dark_low)))
    logger.info("line %s: replaying %d recorded scans from %s", line.id, len(parcels), directory)
    return SimulatedBelt(plan, tuple(False for _ in parcels), tuple(() for _ in parcels))


def _rows(reference: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    out: npt.NDArray[np.uint16] = np.clip(np.round(reference), 0, 65535).astype(np.uint16)
    return out


def _transmission(counts: npt.NDArray[np.uint16], calibration: Calibration, energy: str) -> npt.NDArray[np.float32]:
    dark = getattr(calibration, f"dark_{energy}").astype(np.float32)
    air = getattr(calibration, f"air_{energy}").astype(np.float32)
    span = np.maximum(air - dark, np.float32(1.0))
    out: npt.NDArray[np.float32] = (counts.astype(np.float32) - dark) / span
    return out


def _recalibrated(
    counts: npt.NDArray[np.uint16], own: Calibration, reference: Calibration, energy: str
) -> npt.NDArray[np.uint16]:
    """``counts`` under ``own`` calibration, expressed in ``reference``'s (the belt's) counts."""
    if own is reference:
        return np.ascontiguousarray(counts, dtype=np.uint16)
    t = _transmission(counts, own, energy)
    dark = getattr(reference, f"dark_{energy}").astype(np.float32)
    air = getattr(reference, f"air_{energy}").astype(np.float32)
    out: npt.NDArray[np.uint16] = np.clip(np.round(dark + t * (air - dark)), 0, 65535).astype(np.uint16)
    return out


def _content_rows(scan: RawScan) -> tuple[int, int] | None:
    """``[first, last)`` lines that hold the parcel (plus a small margin), or None for an empty tunnel."""
    t = _transmission(scan.high, scan.calibration, "high")
    good = ~scan.calibration.bad_high
    attenuated = (t[:, good] if bool(good.any()) else t) < CONTENT_TRANSMISSION
    rows = np.flatnonzero(attenuated.sum(axis=1) >= MIN_CONTENT_PIXELS)  # a few pixels, not one noisy one
    if rows.size == 0:
        return None
    first = max(0, int(rows[0]) - TRIM_MARGIN_LINES)
    last = min(scan.shape[0], int(rows[-1]) + 1 + TRIM_MARGIN_LINES)
    return first, last
