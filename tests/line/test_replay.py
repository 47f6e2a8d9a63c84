"""``replay://DIR`` lines: recorded raw scans (the project's raw format) played through the emulated
scanner and I/O board, re-expressed in one belt calibration; bad directories and files are clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smartscreen.config import parse_config
from smartscreen.domain import Route
from smartscreen.errors import ConfigError
from smartscreen.imaging.calibration import Calibration
from smartscreen.imaging.rawio import write_raw_scan
from smartscreen.runtime import ScreeningCentre
from smartscreen.runtime.replay import replay_belt, replay_source
from tests.line.helpers import AIR, CHANNELS, DARK, check_gate_outcomes, config, parcel, wait_until, write_waybills


def _calibration(dark: float, air: float) -> Calibration:
    return Calibration(
        dark_high=np.full(CHANNELS, dark, np.float32),
        dark_low=np.full(CHANNELS, dark, np.float32),
        air_high=np.full(CHANNELS, air, np.float32),
        air_low=np.full(CHANNELS, air, np.float32),
        bad_high=np.zeros(CHANNELS, bool),
        bad_low=np.zeros(CHANNELS, bool),
    )


def _record(directory: Path, kinds: list[str], *, dark: float = 2000.0, air: float = 30000.0) -> None:
    """Raw files of the helper parcels with 40 air lines before and after, recorded under another
    calibration than the helpers' (dark 1 000, air 50 000) from the second file on."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, kind in enumerate(kinds):
        planned = parcel(kind, (), seed=i)
        d, a = (DARK, AIR) if i == 0 else (dark, air)
        scale = (a - d) / (AIR - DARK)

        def recorded(counts: np.ndarray, d: float = d, a: float = a, scale: float = scale) -> np.ndarray:
            t_counts = (counts.astype(np.float64) - DARK) * scale + d
            air_rows = np.full((40, CHANNELS), a)
            return np.clip(np.round(np.concatenate([air_rows, t_counts, air_rows])), 0, 65535).astype(np.uint16)

        write_raw_scan(
            directory / f"scan-{i:03d}.npz",
            recorded(planned.high),
            recorded(planned.low),
            _calibration(d, a),
            {"parcel_id": f"rec-{i}"},
        )


def _line(tmp: Path, scanner: str) -> object:
    return parse_config(
        f"""
centre: {{id: T}}
lines:
  - id: L1
    scanner: "{scanner}"
    io_board: "sim://"
    geometry: {{channels: {CHANNELS}, kvp: 140}}
detector: {{package: "{tmp}"}}
journal: {{url: "sqlite:///{tmp / "j.db"}"}}
waybill: {{url: "file://{tmp / "w.json"}"}}
"""
    ).lines[0]


def test_replay_url_options() -> None:
    directory, options, limit = replay_source("replay:///var/scans?seed=4&io=tcp&parcels=3&repeat=0")
    assert directory == Path("/var/scans") and options.seed == 4 and options.io == "tcp" and not options.repeat
    assert limit == 3
    assert replay_source("replay://recordings/day1")[0] == Path("recordings/day1")
    with pytest.raises(ConfigError, match=r"unknown replay options.*threat_rate"):
        replay_source("replay:///x?threat_rate=0.5")
    with pytest.raises(ConfigError, match="parcels must be"):
        replay_source("replay:///x?parcels=0")


def test_recorded_scans_are_trimmed_and_reexpressed_in_the_belt_calibration(tmp_path: Path) -> None:
    _record(tmp_path / "rec", ["clean", "threat"])
    b = replay_belt(_line(tmp_path, f"replay://{tmp_path / 'rec'}"), f"replay://{tmp_path / 'rec'}", ("A", "B"))  # type: ignore[arg-type]
    assert len(b.plan.parcels) == 2
    assert float(b.plan.air_high.mean()) == AIR and float(b.plan.dark_high.mean()) == DARK  # the first file's
    for i, kind in enumerate(["clean", "threat"]):
        original = parcel(kind, (), seed=i)
        replayed = b.plan.parcels[i]
        # air lines trimmed to the 4-line margin, then padded back to the 0.3 m minimum with air
        n = original.high.shape[0]
        body = replayed.high[4 : 4 + n].astype(np.int64)
        assert np.abs(body - original.high.astype(np.int64)).max() <= 2  # 1 count of rounding per step
        assert np.all(replayed.high[:4] > 0.95 * AIR)


def test_bad_replay_sources_are_clear_errors(tmp_path: Path) -> None:
    line = _line(tmp_path, "replay:///nowhere")
    with pytest.raises(ConfigError, match="does not exist"):
        replay_belt(line, f"replay://{tmp_path / 'missing'}", ())  # type: ignore[arg-type]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \.npz raw scans"):
        replay_belt(line, f"replay://{tmp_path / 'empty'}", ())  # type: ignore[arg-type]
    _record(tmp_path / "bad", ["clean"])
    (tmp_path / "bad" / "scan-999.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ConfigError, match=r"scan-999\.npz"):
        replay_belt(line, f"replay://{tmp_path / 'bad'}", ())  # type: ignore[arg-type]
    wide = tmp_path / "wide"
    wide.mkdir()
    write_raw_scan(
        wide / "w.npz",
        np.full((50, 2 * CHANNELS), 30000, np.uint16),
        np.full((50, 2 * CHANNELS), 30000, np.uint16),
        Calibration(
            dark_high=np.full(2 * CHANNELS, 1000, np.float32),
            dark_low=np.full(2 * CHANNELS, 1000, np.float32),
            air_high=np.full(2 * CHANNELS, 50000, np.float32),
            air_low=np.full(2 * CHANNELS, 50000, np.float32),
            bad_high=np.zeros(2 * CHANNELS, bool),
            bad_low=np.zeros(2 * CHANNELS, bool),
        ),
        {},
    )
    with pytest.raises(ConfigError, match=r"512 channels.*geometry\.channels"):
        replay_belt(line, f"replay://{wide}", ())  # type: ignore[arg-type]


@pytest.mark.slow
def test_replayed_line_rejects_recorded_threats_and_clears_clean_parcels(tmp_path: Path, tiny_model_dir: Path) -> None:
    kinds = ["clean", "threat", "clean", "threat"]
    _record(tmp_path / "rec", kinds)
    write_waybills(tmp_path / "waybills.json", [f"W{i}" for i in range(8)])
    cfg = config(tmp_path, tiny_model_dir)
    line = cfg.lines[0].model_copy(update={"scanner": f"replay://{tmp_path / 'rec'}?repeat=0&noread=0&unknown=0"})
    cfg = cfg.model_copy(update={"lines": (line,)})
    centre = ScreeningCentre(cfg).start()
    board = centre.lines["L1"].site.emulated.ioboard  # type: ignore[union-attr]
    try:
        wait_until(
            lambda: len(board.gate_log) == len(kinds) and all(r.diverted is not None for r in board.gate_log.values()),
            timeout_s=60,
            what="every replayed parcel to reach the gate",
        )
    finally:
        centre.stop()
    expected = {seq: Route.REJECT if k == "threat" else Route.CLEAR for seq, k in enumerate(kinds, start=1)}
    reached = {seq: (bool(r.diverted), r.command_before_gate) for seq, r in board.gate_log.items()}
    assert check_gate_outcomes(tmp_path, "L1", expected, reached) >= 1
