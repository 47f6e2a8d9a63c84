"""Benchmark: sustained GigE Vision receive rate of the pure-Python bridge on loopback.

N emulated dual-energy scanners (2.5 m/s belt, 1.6 mm pitch -> 1562.5 lines/s, 1,024 channels,
two energies, 16 bit: 6.4 MB/s each) stream GVSP from a separate process; this process runs one
:class:`GigeLineSource` per scanner (receiver thread + a consumer thread calling ``read_block``)
and counts what arrives. For each configuration it reports payload MB/s, packets/s, frame and
line completeness, resend requests and CPU use of both processes, then a headroom sweep with
one scanner at higher belt speeds.

    .venv/bin/python benchmarks/bench_gige_receive.py [--seconds 10] [--quick]

Writes ``benchmarks/results/gige_receive.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

from firmware_bridge.belt_plan import BeltPlan, uniform_references
from firmware_bridge.emulate import flat_parcels
from firmware_bridge.gige_receiver import GigeLineSource
from firmware_bridge.scanner_emulator import ScannerEmulator

RESULT = Path(__file__).resolve().parent / "results" / "gige_receive.json"
N_CHANNELS = 1024
PITCH_MM = 1.6
LINES_PER_BLOCK = 32


def _emulator_process(n: int, speed_mm_s: float, urls: Any, stop: Any, results: Any) -> None:
    parcels = flat_parcels(6, N_CHANNELS, seed=1)
    plan = BeltPlan(tuple(parcels), *uniform_references(N_CHANNELS), belt_speed_mm_s=speed_mm_s, line_pitch_mm=PITCH_MM)
    emus = [ScannerEmulator(plan, repeat=True, lines_per_block=LINES_PER_BLOCK, serial=f"BENCH{i}") for i in range(n)]
    for e in emus:
        e.start()
    urls.put([e.url for e in emus])
    cpu0 = time.process_time()
    t0 = time.monotonic()
    stop.wait()
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - t0
    results.put(
        {
            "emulator_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
            "lines_sent": [e.counters.lines_sent for e in emus],
            "packets_sent": [e.counters.packets_sent for e in emus],
            "resend_requests_seen": [e.counters.resend_requests for e in emus],
        }
    )
    for e in emus:
        e.stop()


def run_config(n: int, packet_size: int, seconds: float, speed_mm_s: float = 2500.0) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    urls_q, results_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_emulator_process, args=(n, speed_mm_s, urls_q, stop, results_q), daemon=True)
    proc.start()
    urls = urls_q.get(timeout=60)
    sources = [GigeLineSource(url, packet_size=packet_size) for url in urls]
    counts = [{"lines": 0, "blocks": 0} for _ in sources]
    measuring = threading.Event()
    done = threading.Event()

    def consume(i: int) -> None:
        src = sources[i]
        while not done.is_set():
            block = src.read_block(0.2)
            if block is not None and measuring.is_set():
                counts[i]["lines"] += block.n_lines
                counts[i]["blocks"] += 1

    threads = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(len(sources))]
    for t in threads:
        t.start()
    time.sleep(1.5)  # warm-up: references, first blocks
    base = [(s.receiver_stats.bytes_received, s.receiver_stats.packets_received) for s in sources]
    base_frames = [(s.receiver_stats.frames_complete, s.frames_incomplete, s.resends) for s in sources]
    measuring.set()
    cpu0, t0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    measuring.clear()
    stats = [s.receiver_stats for s in sources]
    nbytes = sum(st.bytes_received - b[0] for st, b in zip(stats, base, strict=True))
    npackets = sum(st.packets_received - b[1] for st, b in zip(stats, base, strict=True))
    frames_complete = sum(st.frames_complete - b[0] for st, b in zip(stats, base_frames, strict=True))
    frames_incomplete = sum(s.frames_incomplete - b[1] for s, b in zip(sources, base_frames, strict=True))
    resends = sum(s.resends - b[2] for s, b in zip(sources, base_frames, strict=True))
    lines = sum(c["lines"] for c in counts)
    done.set()
    for t in threads:
        t.join(timeout=2)
    lines_lost = sum(s.stats.lines_lost for s in sources)
    for s in sources:
        s.close()
    stop.set()
    emu = results_q.get(timeout=30)
    proc.join(timeout=10)
    line_rate = speed_mm_s / PITCH_MM
    nominal_mb_s = n * line_rate * N_CHANNELS * 2 * 2 / 1e6
    return {
        "scanners": n,
        "belt_speed_m_s": speed_mm_s / 1000,
        "packet_size_bytes": packet_size,
        "seconds": round(wall, 2),
        "nominal_pixel_rate_MB_s": round(nominal_mb_s, 2),
        "received_MB_s": round(nbytes / wall / 1e6, 2),
        "received_packets_s": round(npackets / wall),
        "lines_per_s_delivered": round(lines / wall),
        "lines_per_s_nominal": round(n * line_rate),
        "frames_complete": frames_complete,
        "frames_incomplete_or_lost": frames_incomplete,
        "resend_requests": resends,
        "lines_lost_total": lines_lost,
        "loss_free": frames_incomplete == 0 and lines_lost == 0,
        "receiver_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        **emu,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="short runs, no headroom sweep")
    args = p.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    runs = []
    for n, packet in ((1, 8192), (4, 8192), (1, 1500), (4, 1500)):
        r = run_config(n, packet, seconds)
        print(json.dumps(r), flush=True)
        runs.append(r)
    sweep = []
    if not args.quick:
        for speed in (5000.0, 10000.0, 20000.0):
            r = run_config(1, 8192, seconds / 2, speed)
            print(json.dumps(r), flush=True)
            sweep.append(r)
            if not r["loss_free"]:
                break
    result = {
        "benchmark": "gige_receive",
        "what": "pure-Python GVSP receive (GigeLineSource) from emulated dual-energy line-scan scanners on loopback",
        "scanner": {
            "channels": N_CHANNELS,
            "energies": 2,
            "bits": 16,
            "line_pitch_mm": PITCH_MM,
            "lines_per_block": LINES_PER_BLOCK,
            "pixel_format": "Mono16 line records (48-byte line header + high + low)",
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "note": "emulators run in a second process on the same 2 cores; CPU figures are % of one core",
        "runs": runs,
        "headroom_one_scanner_jumbo": sweep,
        "target_4_scanners_loss_free": all(
            r["loss_free"] for r in runs if r["scanners"] == 4 and r["packet_size_bytes"] == 8192
        ),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
