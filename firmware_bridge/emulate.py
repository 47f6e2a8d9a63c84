"""Run the scanner and I/O-board emulators together, in-process or standalone.

Standalone, for integrators::

    python -m firmware_bridge.emulate --scans parcel1.npz parcel2.npz --repeat
    python -m firmware_bridge.emulate --flat-parcels 5 --gvcp-port 3956 --io tcp --io-port 5020

Each ``.npz`` holds ``high`` and ``low`` uint16 arrays (lines x channels, full detector width)
and optionally ``barcodes`` (an array of strings). The process prints one JSON line with the
addresses to connect to (``gige://...`` for :class:`~firmware_bridge.GigeLineSource`, the
serial URL for :class:`~firmware_bridge.IoBoardLink`) and runs until interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from firmware_bridge.belt_clock import BeltClock
from firmware_bridge.belt_plan import BeltPlan, PlannedParcel, uniform_references
from firmware_bridge.gvsp import PixelFormat
from firmware_bridge.ioboard_emulator import IoBoardEmulator
from firmware_bridge.scanner_emulator import FaultConfig, ScannerEmulator

logger = logging.getLogger(__name__)


class EmulatedLine:
    """A scanner emulator and an I/O-board emulator driven by one belt plan and one clock.

    The belt starts when the host starts acquisition on the scanner (after the dark and air
    references), or when :meth:`start_belt` is called.
    """

    def __init__(
        self,
        plan: BeltPlan,
        *,
        host: str = "127.0.0.1",
        gvcp_port: int = 0,
        io_transport: str = "pty",
        io_port: int = 0,
        lines_per_block: int = 32,
        pixel_format: int = PixelFormat.MONO16,
        faults: FaultConfig | None = None,
        repeat: bool = False,
        gate_actuation_ms: float = 20.0,
    ) -> None:
        self.plan = plan
        self.clock = BeltClock()
        self.scanner = ScannerEmulator(
            plan,
            host=host,
            gvcp_port=gvcp_port,
            lines_per_block=lines_per_block,
            pixel_format=pixel_format,
            faults=faults,
            clock=self.clock,
            repeat=repeat,
        )
        self.ioboard = IoBoardEmulator(
            plan,
            clock=self.clock,
            transport=io_transport,
            host=host,
            port=io_port,
            repeat=repeat,
            gate_actuation_ms=gate_actuation_ms,
        )

    @property
    def scanner_url(self) -> str:
        return self.scanner.url

    @property
    def io_url(self) -> str:
        return self.ioboard.url

    def start(self) -> None:
        self.scanner.start()
        self.ioboard.start()

    def start_belt(self) -> None:
        self.clock.start()

    def stop(self) -> None:
        self.ioboard.stop()
        self.scanner.stop()

    def __enter__(self) -> EmulatedLine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_recorded_scans(paths: Sequence[str | Path], gap_mm: float) -> list[PlannedParcel]:
    """Parcels from ``.npz`` files holding ``high``/``low`` uint16 arrays (and optional ``barcodes``)."""
    parcels: list[PlannedParcel] = []
    for path in paths:
        try:
            with np.load(path, allow_pickle=False) as data:
                if "high" not in data or "low" not in data:
                    raise ValueError(f"{path}: needs 'high' and 'low' arrays, has {sorted(data.files)}")
                high, low = data["high"], data["low"]
                codes = tuple(str(c) for c in data["barcodes"].tolist()) if "barcodes" in data else ()
        except OSError as e:
            raise ValueError(f"cannot read recorded scan {path}: {e}") from e
        if high.dtype != np.uint16 or low.dtype != np.uint16:
            raise ValueError(f"{path}: high/low must be uint16, got {high.dtype}/{low.dtype}")
        parcels.append(PlannedParcel(high, low, codes, gap_mm))
    return parcels


def flat_parcels(n: int, n_channels: int, seed: int = 0, gap_mm: float = 300.0) -> list[PlannedParcel]:
    """Plain rectangular test parcels (uniform attenuation with a denser block inside); not imagery."""
    rng = np.random.default_rng(seed)
    out: list[PlannedParcel] = []
    for i in range(n):
        lines = int(rng.integers(150, 400))
        high = np.full((lines, n_channels), 60000, dtype=np.uint16)
        low = np.full((lines, n_channels), 60000, dtype=np.uint16)
        c0, c1 = sorted(rng.integers(0, n_channels, 2).tolist())
        high[:, c0 : c1 + 1] = int(rng.integers(20000, 40000))
        low[:, c0 : c1 + 1] = int(rng.integers(8000, 20000))
        a, b = lines // 3, 2 * lines // 3
        high[a:b, c0 : c1 + 1] //= 3
        low[a:b, c0 : c1 + 1] //= 5
        out.append(PlannedParcel(high, low, (f"SS{seed:02d}{i:08d}",), gap_mm))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m firmware_bridge.emulate", description=__doc__.split("\n\n")[0])
    add_emulator_arguments(p)
    p.add_argument("--scans", nargs="*", default=[], help=".npz files with high/low uint16 arrays")
    p.add_argument("--flat-parcels", type=int, default=0, help="add N plain rectangular test parcels")
    p.add_argument("--channels", type=int, default=1024, help="detector channels (for --flat-parcels)")
    return p


def add_emulator_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared with ``smartscreen emulate``."""
    p.add_argument("--host", default="127.0.0.1", help="address both emulators listen on")
    p.add_argument("--gvcp-port", type=int, default=0, help="GVCP port (0 = ephemeral; 3956 for Aravis tools)")
    p.add_argument("--io", choices=["pty", "tcp"], default="tcp", help="I/O board transport")
    p.add_argument("--io-port", type=int, default=0, help="TCP port of the I/O board (with --io tcp)")
    p.add_argument("--belt-speed", type=float, default=2500.0, help="belt speed, mm/s")
    p.add_argument("--pitch", type=float, default=1.6, help="line pitch along the belt, mm")
    p.add_argument("--gap-mm", type=float, default=300.0, help="empty belt between parcels, mm")
    p.add_argument("--lines-per-block", type=int, default=32)
    p.add_argument("--pixel-format", choices=["Mono16", "Mono12Packed", "Mono12p"], default="Mono16")
    p.add_argument("--loss", type=float, default=0.0, help="GVSP packet loss probability")
    p.add_argument("--reorder", type=float, default=0.0)
    p.add_argument("--duplicate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", action="store_true", help="loop the plan forever")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = run until Ctrl-C)")


PIXEL_FORMATS = {
    "Mono16": PixelFormat.MONO16,
    "Mono12Packed": PixelFormat.MONO12_PACKED,
    "Mono12p": PixelFormat.MONO12P,
}


References = tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16], npt.NDArray[np.uint16], npt.NDArray[np.uint16]]


def run_emulators(
    args: argparse.Namespace, parcels: Sequence[PlannedParcel], references: References | None = None
) -> int:
    """Build the plan from ``parcels`` (and air_high, air_low, dark_high, dark_low), run both emulators, wait."""
    if not parcels:
        print("no parcels: give --scans FILE.npz ... or --flat-parcels N", file=sys.stderr)
        return 2
    n_ch = parcels[0].high.shape[1]
    plan = BeltPlan(
        tuple(parcels),
        *(references if references is not None else uniform_references(n_ch)),
        belt_speed_mm_s=args.belt_speed,
        line_pitch_mm=args.pitch,
    )
    line = EmulatedLine(
        plan,
        host=args.host,
        gvcp_port=args.gvcp_port,
        io_transport=args.io,
        io_port=args.io_port,
        lines_per_block=args.lines_per_block,
        pixel_format=PIXEL_FORMATS[args.pixel_format],
        faults=FaultConfig(loss=args.loss, reorder=args.reorder, duplicate=args.duplicate, seed=args.seed),
        repeat=args.repeat,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with line:
        print(
            json.dumps(
                {
                    "scanner": line.scanner_url,
                    "io_board": line.io_url,
                    "parcels": len(parcels),
                    "channels": n_ch,
                    "line_rate_hz": plan.line_rate_hz,
                    "plan_seconds": plan.n_lines / plan.line_rate_hz,
                }
            ),
            flush=True,
        )
        stop.wait(args.duration if args.duration > 0 else None)
        counters = line.scanner.counters
        logger.info("scanner: %s", counters)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        parcels = load_recorded_scans(args.scans, args.gap_mm)
        parcels += flat_parcels(args.flat_parcels, parcels[0].high.shape[1] if parcels else args.channels, args.seed)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run_emulators(args, parcels)


if __name__ == "__main__":
    sys.exit(main())
