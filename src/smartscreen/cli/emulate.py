"""``smartscreen emulate``: the scanner and I/O-board emulators fed by simulated (or recorded) parcels."""

from __future__ import annotations

import argparse

HELP = "run the GigE Vision scanner and serial I/O-board emulators on simulated or recorded parcels"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from firmware_bridge.emulate import add_emulator_arguments

    add_emulator_arguments(parser)
    parser.add_argument("--parcels", type=int, default=10, help="simulated parcels (smartscreen.imaging)")
    parser.add_argument("--threat-probability", type=float, default=0.3)
    parser.add_argument("--channels", type=int, default=1024, help="detector channels of the simulated scanner")
    parser.add_argument("--scans", nargs="*", default=[], help="recorded .npz scans (high/low uint16) to add")
    parser.add_argument(
        "--no-read-fraction", type=float, default=0.05, help="share of simulated parcels the barcode reader misses"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from firmware_bridge.belt_plan import PlannedParcel
    from firmware_bridge.emulate import load_recorded_scans, run_emulators
    from smartscreen.imaging.scanner import ScannerParams
    from smartscreen.imaging.simulator import ParcelSimulator

    rng = np.random.default_rng(args.seed)
    params = ScannerParams(channels=args.channels, line_pitch_mm=args.pitch, belt_speed_mm_s=args.belt_speed)
    simulator = ParcelSimulator(params, rng)
    parcels: list[PlannedParcel] = []
    for i in range(args.parcels):
        sim = simulator.simulate(args.threat_probability)
        codes: tuple[str, ...] = () if rng.random() < args.no_read_fraction else (f"SS{args.seed:04d}{i:08d}",)
        parcels.append(PlannedParcel(sim.high, sim.low, codes, args.gap_mm))
    parcels += load_recorded_scans(args.scans, args.gap_mm)
    air_h, air_l = simulator.air_lines(64)
    dark_h, dark_l = simulator.dark_lines(64)
    return run_emulators(args, parcels, references=(air_h, air_l, dark_h, dark_l))
