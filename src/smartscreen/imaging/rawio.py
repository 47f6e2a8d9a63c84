"""The project's raw dual-energy scan format: an ``.npz`` archive (see ``datasets/RAW_FORMAT.md``).

Keys: ``high`` and ``low`` (uint16, ``(n_lines, n_channels)``), ``dark_high``, ``dark_low``,
``air_high``, ``air_low`` (float32, ``(n_channels,)``), optional ``bad_high``/``bad_low`` (uint8
masks) and ``meta`` (a JSON string: format version, kVp, filtration, pitches, bit depth, scanner
id). Written deterministically (fixed zip timestamps) so equal scans give equal bytes.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from smartscreen.errors import CalibrationError, ImagingError
from smartscreen.imaging.calibration import Calibration, validate_raw
from smartscreen.imaging.scanner import ScannerParams

FORMAT_NAME = "smartscreen-raw"
FORMAT_VERSION = 1
_REFERENCE_KEYS = ("dark_high", "dark_low", "air_high", "air_low")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class RawScan:
    """A raw scan with its calibration references and metadata."""

    high: npt.NDArray[np.uint16]
    low: npt.NDArray[np.uint16]
    calibration: Calibration
    meta: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.high.shape[0]), int(self.high.shape[1]))

    def scanner_params(self) -> ScannerParams:
        """Scanner parameters from the metadata (defaults for anything the file does not say)."""
        known = dict(self.meta.get("scanner", {}))
        for key in (
            "kvp",
            "filtration_al_mm",
            "filter_cu_mm",
            "channel_pitch_mm",
            "line_pitch_mm",
            "bit_depth",
            "scanner_id",
        ):
            if key in self.meta:
                known[key] = self.meta[key]
        known["channels"] = self.shape[1]
        try:
            return ScannerParams.from_meta(known)
        except (TypeError, ValueError) as e:
            raise ImagingError(f"raw scan metadata describes an impossible scanner: {e}") from e


def raw_meta(params: ScannerParams, **extra: Any) -> dict[str, Any]:
    """The ``meta`` JSON object for a scan from a scanner with ``params``."""
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "scanner_id": params.scanner_id,
        "kvp": params.kvp,
        "filtration_al_mm": params.filtration_al_mm,
        "filter_cu_mm": params.filter_cu_mm,
        "channel_pitch_mm": params.channel_pitch_mm,
        "line_pitch_mm": params.line_pitch_mm,
        "bit_depth": params.bit_depth,
        "belt_speed_mm_s": params.belt_speed_mm_s,
        "scanner": params.to_meta(),
    }
    meta.update(extra)
    return meta


def write_raw_scan(
    path: Path | str,
    high: npt.NDArray[np.uint16],
    low: npt.NDArray[np.uint16],
    calibration: Calibration,
    meta: dict[str, Any],
    compress: bool = True,
) -> None:
    """Write a raw scan; the bytes depend only on the content (deterministic archive)."""
    validate_raw(high, low, calibration)
    arrays: dict[str, npt.NDArray[Any]] = {
        "high": np.ascontiguousarray(high),
        "low": np.ascontiguousarray(low),
        "dark_high": calibration.dark_high.astype(np.float32),
        "dark_low": calibration.dark_low.astype(np.float32),
        "air_high": calibration.air_high.astype(np.float32),
        "air_low": calibration.air_low.astype(np.float32),
        "bad_high": calibration.bad_high.astype(np.uint8),
        "bad_low": calibration.bad_low.astype(np.uint8),
        "meta": np.array(json.dumps(meta, sort_keys=True, separators=(",", ":"))),
    }
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=method, compresslevel=1 if compress else None) as zf:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = method
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            zf.writestr(info, buffer.getvalue())
    tmp.replace(target)


def read_raw_scan(path: Path | str) -> RawScan:
    """Read and validate a raw scan.

    Raises:
        ImagingError: unreadable file, missing ``high``/``low``, wrong dtype or shape, saturated lines.
        CalibrationError: missing or inconsistent calibration references.
    """
    source = Path(path)
    try:
        archive = np.load(source, allow_pickle=False)
    except FileNotFoundError:
        raise ImagingError(f"{source}: no such raw scan file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ImagingError(f"{source}: not a readable .npz raw scan ({e})") from e
    with archive:
        keys = set(archive.files)
        for key in ("high", "low"):
            if key not in keys:
                raise ImagingError(f"{source}: missing array '{key}' (a raw scan needs 'high' and 'low' uint16 counts)")
        missing = [k for k in _REFERENCE_KEYS if k not in keys]
        if missing:
            raise CalibrationError(
                f"{source}: missing calibration reference(s) {', '.join(missing)}: a raw scan needs per-channel "
                "dark_high, dark_low, air_high and air_low"
            )
        high = archive["high"]
        low = archive["low"]
        refs = {k: np.asarray(archive[k]) for k in _REFERENCE_KEYS}
        bad_high = np.asarray(archive["bad_high"]).astype(bool) if "bad_high" in keys else None
        bad_low = np.asarray(archive["bad_low"]).astype(bool) if "bad_low" in keys else None
        meta: dict[str, Any] = {}
        if "meta" in keys:
            try:
                meta = json.loads(str(archive["meta"]))
            except json.JSONDecodeError as e:
                raise ImagingError(f"{source}: 'meta' is not valid JSON ({e})") from e
            if not isinstance(meta, dict):
                raise ImagingError(f"{source}: 'meta' must be a JSON object")
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ImagingError(f"{source}: raw format version {version!r} is newer than this reader ({FORMAT_VERSION})")
    for key, ref in refs.items():
        if ref.ndim != 1:
            raise CalibrationError(
                f"{source}: calibration reference '{key}' must be 1-D (n_channels,), got shape {ref.shape}"
            )
    full_scale = int(2 ** int(meta.get("bit_depth", 16)) - 1)
    try:
        calibration = Calibration.from_references(
            refs["dark_high"], refs["dark_low"], refs["air_high"], refs["air_low"], full_scale, bad_high, bad_low
        )
    except CalibrationError as e:
        raise CalibrationError(f"{source}: {e}") from e
    try:
        validate_raw(high, low, calibration)
    except ImagingError as e:
        raise type(e)(f"{source}: {e}") from e
    return RawScan(high=high, low=low, calibration=calibration, meta=meta)
