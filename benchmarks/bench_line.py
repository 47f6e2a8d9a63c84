"""Screening-line benchmark: N emulated lines into one runtime, until deadline misses appear.

Each line: emulated GigE Vision scanner (1,024 channels, 1.6 mm pitch, 2.5 m/s, two energies,
16 bit) and serial I/O board on loopback, simulated parcels 0.3-0.8 m long with gaps of at least
0.2 m (``smartscreen.imaging`` simulator, threat rate 0.2), a 2.0 s entry-to-gate deadline
(200 mm eye-to-scan + 4,800 mm scan-to-gate at 2.5 m/s, 150 ms actuator margin), gates
alternating between the I/O board and an emulated PLC over Modbus TCP. All lines share the
detector (micro-batcher), the journal (SQLite WAL, synchronous=FULL) and the image store.

Reports per N: parcels/s, decision latency (scan complete -> gate command) p50/p99/max, deadline
misses, fail-closed counts, CPU seconds per stage (per-thread CPU from /proc, grouped by stage).
The emulators run in the same process and their CPU is reported separately.

Model: ``models/smartscreen-yolo11n`` when present, else a YOLO11n exported from ultralytics'
yolo11.yaml with random weights (same compute; needs the train extra).

    .venv/bin/python benchmarks/bench_line.py [--lines 1,2,4,6,8] [--duration 30]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "smartscreen-yolo11n"
sys.path.insert(0, str(ROOT / "benchmarks"))

TICKS = os.sysconf("SC_CLK_TCK")
GROUPS = (
    ("scan-", "scan (GigE blocks in)"),
    ("gvsp-rx-", "gvsp receiver"),
    ("gvcp-heartbeat", "gvcp heartbeat"),
    ("io-", "io (board events)"),
    ("link-io-board", "serial link (host)"),
    ("assemble-", "assemble"),
    ("process-", "process (calibrate, render, store)"),
    ("decide-", "decide (fusion, policy)"),
    ("gate-", "gate"),
    ("journal", "journal writer"),
    ("detect-", "detector (batcher + inference)"),
    ("waybill", "waybill lookups"),
    ("heartbeat-", "gate heartbeats"),
    ("scanner-emu", "EMULATOR scanner"),
    ("ioboard-emu", "EMULATOR io board"),
    ("link-", "EMULATOR serial link"),
    ("plc-", "EMULATOR PLC"),
    ("modbus-plc", "EMULATOR PLC modbus server"),
)


def thread_cpu_s() -> dict[int, float]:
    out: dict[int, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def thread_names() -> dict[int, str]:
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


def cpu_by_stage(before: dict[int, float], after: dict[int, float], names: dict[int, str]) -> dict[str, float]:
    groups: dict[str, float] = {}
    for tid, cpu in after.items():
        delta = cpu - before.get(tid, 0.0)
        name = names.get(tid, "main/other" if tid == os.getpid() else "other (native pools)")
        label = next((g for prefix, g in GROUPS if name.startswith(prefix)), "other: " + name.split("-")[0])
        groups[label] = round(groups.get(label, 0.0) + delta, 2)
    return dict(sorted(groups.items(), key=lambda kv: -kv[1]))


def prepare_model(workdir: Path) -> tuple[Path, str]:
    if (SHIPPED / "model.yaml").is_file():
        return SHIPPED, "shipped package models/smartscreen-yolo11n"
    from bench_detector import export_yolo11n

    from smartscreen.detection.package import TrainingInfo, write_model_package

    pkg = write_model_package(
        workdir / "pkg",
        export_yolo11n(workdir),
        name="yolo11n-random",
        version="0",
        architecture="yolo11n",
        training=TrainingInfo(data_description="none: random weights, for speed only"),
    )
    return pkg.directory, "YOLO11n from yolo11.yaml (nc=15, random weights), dynamic ONNX export"


def line_yaml(i: int, parcels: int) -> str:
    gate = "ioboard://" if i % 2 == 0 else "plc-sim://?modbus=1"
    return f"""
  - id: L{i + 1}
    scanner: "sim://?seed={100 + i}&threat_rate=0.2&parcels={parcels}&min_gap_mm=200&max_gap_mm=400"
    io_board: "sim://"
    gate: "{gate}"
    geometry: {{channels: 1024, channel_pitch_mm: 1.6, line_pitch_mm: 1.6, kvp: 140}}
    belt_speed_mm_s: 2500
    eye_to_scan_mm: 200
    scanner_to_gate_mm: 4800
    actuator_margin_ms: 150
"""


def run_n(n: int, args: argparse.Namespace, model: Path, workdir: Path, belts: dict[str, object]) -> dict[str, object]:
    from smartscreen.config import parse_config
    from smartscreen.runtime import ScreeningCentre
    from smartscreen.runtime.emulation import SimOptions, simulate_belt

    run_dir = workdir / f"n{n}"
    run_dir.mkdir()
    cfg = parse_config(
        f"""
centre: {{id: BENCH}}
lines:{"".join(line_yaml(i, args.parcels) for i in range(n))}
detector: {{package: "{model}", max_batch: 8, max_wait_ms: 15, intra_op_threads: {args.intra_op_threads}, timeout_ms: 1500}}
journal: {{url: "sqlite:///{run_dir / "journal.db"}", image_dir: "{run_dir / "images"}"}}
waybill: {{url: "file://{ROOT / "datasets/waybills/demo-waybills.json"}"}}
runtime: {{drain_s: 3}}
"""
    )
    codes = tuple(
        json.loads((ROOT / "datasets/waybills/demo-waybills.json").read_text())["waybills"][i]["tracking_no"]
        for i in range(600)
    )
    for line in cfg.lines:
        if line.id not in belts:
            belts[line.id] = simulate_belt(line, SimOptions.from_url(line.scanner), codes)
    centre = ScreeningCentre(cfg, belts=belts).start()  # type: ignore[arg-type]
    try:
        time.sleep(args.warmup)
        base_outcomes = {k: len(h.line.outcomes) for k, h in centre.lines.items()}
        base_lat = {k: len(h.line.latencies_ms) for k, h in centre.lines.items()}
        cpu0, wall0 = thread_cpu_s(), time.monotonic()
        time.sleep(args.duration)
        cpu1, wall1, names = thread_cpu_s(), time.monotonic(), thread_names()
        outcomes = [o for k, h in centre.lines.items() for o in h.line.outcomes[base_outcomes[k] :]]
        latencies = sorted(x for k, h in centre.lines.items() for x in h.line.latencies_ms[base_lat[k] :])
        detector_stats = centre.batcher.stats() if centre.batcher is not None else None  # type: ignore[attr-defined]
    finally:
        centre.stop()
    elapsed = wall1 - wall0
    fail_closed: dict[str, int] = {}
    for o in outcomes:
        if o.decision.fail_closed:
            code = o.decision.reasons[0].code.value
            fail_closed[code] = fail_closed.get(code, 0) + 1

    def pct(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else None

    stage_cpu = cpu_by_stage(cpu0, cpu1, names)
    return {
        "lines": n,
        "measured_s": round(elapsed, 1),
        "parcels": len(outcomes),
        "parcels_per_s": round(len(outcomes) / elapsed, 2),
        "decision_latency_ms": {
            "p50": pct(0.5),
            "p99": pct(0.99),
            "max": round(latencies[-1], 1) if latencies else None,
        },
        "deadline_misses": sum(1 for o in outcomes if o.late),
        "fail_closed": fail_closed,
        "alarms": sum(1 for o in outcomes if o.decision.route.diverts and not o.decision.fail_closed),
        "cpu_s_by_stage": stage_cpu,
        "cpu_utilisation_cores": round(sum(stage_cpu.values()) / elapsed, 2),
        "detector": {
            "batches": getattr(detector_stats, "batches", None),
            "mean_batch": round(
                getattr(detector_stats, "batched_scans", 0) / max(getattr(detector_stats, "batches", 0), 1), 2
            ),
            "failed": getattr(detector_stats, "failed", None),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--lines", default="1,2,4,6,8", help="line counts to try, in order (stops after the first with misses)"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per line count")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=1,
        help="onnxruntime threads (1 avoids spinning pool threads competing with the line on 2 cores)",
    )
    parser.add_argument("--parcels", type=int, default=6, help="distinct simulated parcels per line (cycled)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "line.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / ".ultralytics"))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-line-") as tmp:
        workdir = Path(tmp)
        model, model_note = prepare_model(workdir)
        belts: dict[str, object] = {}
        largest_ok = 0
        for n in (int(x) for x in args.lines.split(",")):
            print(f"== {n} line(s): simulating and running {args.duration:.0f} s ...", flush=True)
            result = run_n(n, args, model, workdir, belts)
            results.append(result)
            print(json.dumps(result), flush=True)
            if result["deadline_misses"]:
                break
            largest_ok = n
    report = {
        "benchmark": "screening line: N emulated lines, 2.5 m/s, parcels 0.3-0.8 m, gaps >= 0.2 m, 2.0 s entry-to-gate",
        "model": model_note,
        "largest_n_without_misses": largest_ok,
        "results": results,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_after": list(os.getloadavg()),
        },
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "command": "python benchmarks/bench_line.py " + " ".join(sys.argv[1:]),
        "note": "emulators run in the benchmark process on the same 2 cores; the CPU is shared with other work (see loadavg)",
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"largest N without deadline misses: {largest_ok}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
