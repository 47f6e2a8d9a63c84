"""``smartscreen run --config FILE``: run the screening lines of a configuration (devices by URL)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

HELP = "Run the screening lines of a configuration: scanners, I/O boards and gates by URL (real or sim://)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="configuration YAML (see config/*.yaml)")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: run until Ctrl-C or SIGTERM)"
    )
    parser.add_argument("--summary-every", type=float, default=5.0, help="seconds between summary lines (0: none)")
    parser.add_argument("--json", type=Path, default=None, help="write the final summary as JSON to this file")


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT end the run cleanly (pending parcels are still commanded or fail closed)."""

    def handler(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    from smartscreen.config import load_config
    from smartscreen.runtime import ScreeningCentre

    config = load_config(args.config)
    stop = threading.Event()
    install_stop_signals(stop)
    centre = ScreeningCentre(config).start()
    if centre.recovered:
        print(f"recovered the journal: {centre.recovered} parcels recorded as missed (fail-closed)", flush=True)
    print(f"running {len(config.lines)} line(s) of centre {config.centre.id}; Ctrl-C to stop", flush=True)
    if centre.metrics_url:
        print(f"Prometheus metrics: {centre.metrics_url}", flush=True)
    started = time.monotonic()
    next_summary = started + args.summary_every
    try:
        while not stop.wait(0.2):
            now = time.monotonic()
            if args.summary_every and now >= next_summary:
                print(centre.summary_line(), flush=True)
                next_summary = now + args.summary_every
            if args.duration and now - started >= args.duration:
                break
    finally:
        centre.stop()
    summary = centre.summary()
    summary["stage_cpu_s"] = centre.stage_cpu()
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    sys.stdout.flush()
    return 0
