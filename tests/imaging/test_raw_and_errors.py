"""Raw .npz format and clear errors for bad input."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from smartscreen.errors import CalibrationError, ImagingError
from smartscreen.imaging import Calibration, calibrate, raw_meta, read_raw_scan, write_raw_scan


@pytest.fixture(scope="module")
def parcel_and_cal(default_scanner):  # type: ignore[no-untyped-def]
    params, sim, calibration, _ = default_scanner
    parcel = sim.simulate(threat_probability=1.0)
    return params, parcel, calibration


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array)
            zf.writestr(f"{key}.npy", buffer.getvalue())
    return path


def test_round_trip_is_lossless_and_plain_numpy(tmp_path: Path, parcel_and_cal) -> None:  # type: ignore[no-untyped-def]
    params, parcel, calibration = parcel_and_cal
    path = tmp_path / "scan.npz"
    write_raw_scan(path, parcel.high, parcel.low, calibration, raw_meta(params, parcel_id="p1"))
    with np.load(path) as plain:  # what the firmware bridge emulator does
        assert plain["high"].dtype == np.uint16 and plain["high"].shape == parcel.high.shape
        assert np.array_equal(plain["low"], parcel.low)
    scan = read_raw_scan(path)
    assert np.array_equal(scan.high, parcel.high) and np.array_equal(scan.low, parcel.low)
    assert np.array_equal(scan.calibration.air_high, calibration.air_high)
    assert np.array_equal(scan.calibration.bad_low, calibration.bad_low)
    assert scan.meta["kvp"] == params.kvp and scan.meta["format_version"] == 1
    assert scan.scanner_params().spectral_key() == params.spectral_key()
    # deterministic bytes
    path2 = tmp_path / "scan2.npz"
    write_raw_scan(path2, parcel.high, parcel.low, calibration, raw_meta(params, parcel_id="p1"))
    assert path.read_bytes() == path2.read_bytes()


def test_wrong_dtype_is_named(parcel_and_cal) -> None:  # type: ignore[no-untyped-def]
    _, parcel, calibration = parcel_and_cal
    with pytest.raises(ImagingError, match="must be uint16 counts, got dtype float32"):
        calibrate(parcel.high.astype(np.float32), parcel.low, calibration)  # type: ignore[arg-type]


def test_wrong_shape_is_named(parcel_and_cal) -> None:  # type: ignore[no-untyped-def]
    _, parcel, calibration = parcel_and_cal
    with pytest.raises(ImagingError, match="must be 2-D"):
        calibrate(parcel.high.ravel(), parcel.low.ravel(), calibration)
    with pytest.raises(ImagingError, match="must have the same shape"):
        calibrate(parcel.high, parcel.low[:-1], calibration)
    with pytest.raises(CalibrationError, match="calibration has 1024 channels but the scan has 1000"):
        calibrate(parcel.high[:, :1000], parcel.low[:, :1000], calibration)


def test_missing_calibration_is_named(tmp_path: Path, parcel_and_cal) -> None:  # type: ignore[no-untyped-def]
    _, parcel, calibration = parcel_and_cal
    with pytest.raises(CalibrationError, match="no calibration"):
        calibrate(parcel.high, parcel.low, None)
    path = _npz(tmp_path / "nocal.npz", high=parcel.high, low=parcel.low, dark_high=calibration.dark_high)
    with pytest.raises(CalibrationError, match="missing calibration reference\\(s\\) dark_low, air_high, air_low"):
        read_raw_scan(path)
    path = _npz(tmp_path / "nolow.npz", high=parcel.high)
    with pytest.raises(ImagingError, match="missing array 'low'"):
        read_raw_scan(path)


def test_air_not_above_dark_is_named(parcel_and_cal) -> None:  # type: ignore[no-untyped-def]
    _, _, calibration = parcel_and_cal
    with pytest.raises(CalibrationError, match="air reference is not above the dark reference"):
        Calibration.from_references(
            calibration.dark_high, calibration.dark_low, calibration.dark_high + 1, calibration.air_low
        )


def test_all_saturated_lines_are_named(parcel_and_cal) -> None:  # type: ignore[no-untyped-def]
    _, parcel, calibration = parcel_and_cal
    high = parcel.high.copy()
    high[[3, 7], :] = 65535
    with pytest.raises(ImagingError, match=r"2 fully saturated line\(s\).*lines 3, 7"):
        calibrate(high, parcel.low, calibration)


def test_unreadable_and_bad_meta_files(tmp_path: Path, parcel_and_cal) -> None:  # type: ignore[no-untyped-def]
    _, parcel, calibration = parcel_and_cal
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ImagingError, match=r"not a readable \.npz"):
        read_raw_scan(junk)
    with pytest.raises(ImagingError, match="no such raw scan"):
        read_raw_scan(tmp_path / "absent.npz")
    refs = {k: getattr(calibration, k) for k in ("dark_high", "dark_low", "air_high", "air_low")}
    path = _npz(
        tmp_path / "newer.npz",
        high=parcel.high,
        low=parcel.low,
        meta=np.array(json.dumps({"format_version": 99})),
        **refs,
    )
    with pytest.raises(ImagingError, match="newer than this reader"):
        read_raw_scan(path)


def test_reference_of_another_length_is_named(parcel_and_cal) -> None:  # type: ignore[no-untyped-def]
    _, _, calibration = parcel_and_cal
    with pytest.raises(CalibrationError, match="must be 1-D of length 1024"):
        Calibration.from_references(
            calibration.dark_high, calibration.dark_low[:-1], calibration.air_high, calibration.air_low
        )
    with pytest.raises(CalibrationError, match="bad-pixel map bad_low must have shape"):
        Calibration.from_references(
            calibration.dark_high,
            calibration.dark_low,
            calibration.air_high,
            calibration.air_low,
            bad_low=np.zeros(5, bool),
        )
