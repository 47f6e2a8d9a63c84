"""Screening-line benchmark: N emulated lines into one runtime, until deadline misses appear.

Each line: emulated GigE Vision scanner (1,024 channels, 1.6 mm pitch, 2.5 m/s, two energies,
16 bit) and serial I/O board on loopback, simulated parcels 0.3-0.8 m long with gaps of at least
0.2 m (``smartscreen.imaging`` simulator, threat rate 0.2), a 2.0 s entry-to-gate deadline
(200 mm eye-to-scan + 4,800 mm scan-to-gate at 2.5 m/s, 150 ms actuator margin), gates
alternating between the I/O board and an emulated PLC over Modbus TCP. All lines share the
detector (micro-batcher), the journal (SQLite WAL, synchronous=FULL) and the image store.

The emulated hardware (scanners, I/O boards, PLCs, belt plans) runs in a child process, as real
devices would be outside the runtime; the runtime connects to it over loopback sockets and
pseudo-terminals exactly as ``smartscreen run`` does with real devices. Both share the 2 cores.

Reports per N: parcels/s, decision latency (scan complete -> gate command) p50/p99/max, deadline
misses (a decision that did not reach the gate stage in time), parcels failed closed for timing
(the detector could not finish before the deadline), other fail-closed counts, what the gates
really did (from the emulated boards/PLCs), and CPU seconds per stage (per-thread CPU from /proc).

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


def prepare_model(workdir: Path, package: Path | None = None) -> tuple[Path, str]:
    if package is not None:
        return package.resolve(), f"package {package}"
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
    gate = "ioboard://" if i % 2 == 0 else "plc-sim://"
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


def emulated_config_text(n: int, parcels: int) -> str:
    return f'centre: {{id: BENCH}}\nlines:{"".join(line_yaml(i, parcels) for i in range(n))}\nwaybill: {{url: "file://{ROOT / "datasets/waybills/demo-waybills.json"}"}}\n'


def emulators_main(config_path: str) -> int:
    """Child process: run the emulated hardware of every line until stdin closes; report what the gates did."""
    from smartscreen.config import load_config
    from smartscreen.fusion.waybills import read_waybill_file, url_path
    from smartscreen.gate.drivers import ModbusPlcServer
    from smartscreen.runtime.emulation import EmulatedSite, SimOptions

    logging.basicConfig(level=logging.ERROR)
    cfg = load_config(Path(config_path))
    codes = tuple(r.tracking_no for r in read_waybill_file(url_path(cfg.waybill.url)))
    sites: dict[str, EmulatedSite] = {}
    servers: dict[str, ModbusPlcServer] = {}
    urls: dict[str, dict[str, str]] = {}
    for line in cfg.lines:
        plc = line.gate.startswith("plc-sim")
        site = EmulatedSite(line, SimOptions.from_url(line.scanner), codes, with_plc=plc).start()
        sites[line.id] = site
        gate = "ioboard://"
        if plc and site.plc is not None:
            servers[line.id] = ModbusPlcServer(site.plc).start()
            gate = f"modbus://127.0.0.1:{servers[line.id].port}?unit=1"
        urls[line.id] = {"scanner": site.scanner_url, "io_board": f"pty://{site.io_url}", "gate": gate}
    print(json.dumps(urls), flush=True)
    sys.stdin.read()  # until the parent closes it
    report: dict[str, dict[str, int]] = {}
    for line_id, site in sites.items():
        if site.plc is not None:
            results = list(site.plc.results.values())
            report[line_id] = {
                "reached_gate": len(results),
                "commanded_in_time": sum(1 for r in results if r.commanded),
                "released": sum(1 for r in results if not r.route.diverts),
                "diverted_by_default": sum(1 for r in results if not r.commanded),
            }
        else:
            log = [r for r in site.emulated.ioboard.gate_log.values() if r.diverted is not None]
            report[line_id] = {
                "reached_gate": len(log),
                "commanded_in_time": sum(1 for r in log if r.command_before_gate),
                "released": sum(1 for r in log if not r.diverted),
                "diverted_by_default": sum(1 for r in log if not r.command_before_gate),
            }
    for server in servers.values():
        server.stop()
    for site in sites.values():
        site.stop()
    print(json.dumps(report), flush=True)
    return 0


def run_n(n: int, args: argparse.Namespace, model: Path, workdir: Path) -> dict[str, object]:
    from smartscreen.config import parse_config
    from smartscreen.runtime import ScreeningCentre

    run_dir = workdir / f"n{n}"
    run_dir.mkdir()
    emu_config = run_dir / "emulators.yaml"
    emu_config.write_text(emulated_config_text(n, args.parcels), encoding="utf-8")
    child = subprocess.Popen(
        [sys.executable, __file__, "--_emulators", str(emu_config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    urls = json.loads(child.stdout.readline())
    lines = "".join(
        f"""
  - id: {line_id}
    scanner: "{u["scanner"]}"
    io_board: "{u["io_board"]}"
    gate: "{u["gate"]}"
    geometry: {{channels: 1024, channel_pitch_mm: 1.6, line_pitch_mm: 1.6, kvp: 140}}
    belt_speed_mm_s: 2500
    eye_to_scan_mm: 200
    scanner_to_gate_mm: 4800
    actuator_margin_ms: 150
"""
        for line_id, u in urls.items()
    )
    cfg = parse_config(
        f"""
centre: {{id: BENCH}}
lines:{lines}
detector: {{package: "{model}", max_batch: {args.max_batch}, max_wait_ms: 15, intra_op_threads: {args.intra_op_threads}, timeout_ms: 1500, tta: {args.tta}, verifier: {args.verifier}}}
journal: {{url: "sqlite:///{run_dir / "journal.db"}", image_dir: "{run_dir / "images"}"}}
waybill: {{url: "file://{ROOT / "datasets/waybills/demo-waybills.json"}"}}
runtime: {{drain_s: 3}}
"""
    )
    centre = ScreeningCentre(cfg).start()
    try:
        time.sleep(args.warmup)
        base_outcomes = {k: len(h.line.outcomes) for k, h in centre.lines.items()}
        base_lat = {k: len(h.line.latencies_ms) for k, h in centre.lines.items()}
        cpu0, wall0 = thread_cpu_s(), time.monotonic()
        child_cpu0 = child_cpu_s(child.pid)
        time.sleep(args.duration)
        cpu1, wall1, names = thread_cpu_s(), time.monotonic(), thread_names()
        child_cpu1 = child_cpu_s(child.pid)
        outcomes = [o for k, h in centre.lines.items() for o in h.line.outcomes[base_outcomes[k] :]]
        latencies = sorted(x for k, h in centre.lines.items() for x in h.line.latencies_ms[base_lat[k] :])
        detector_stats = centre.batcher.stats() if centre.batcher is not None else None  # type: ignore[attr-defined]
    finally:
        centre.stop()
        child.stdin.close()
        gates = json.loads(child.stdout.readline() or "{}")
        child.wait(30)
    elapsed = wall1 - wall0
    fail_closed: dict[str, int] = {}
    timing = 0
    for o in outcomes:
        if o.decision.fail_closed:
            code = o.decision.reasons[0].code.value
            fail_closed[code] = fail_closed.get(code, 0) + 1
            detail = o.decision.reasons[0].detail
            if code == "deadline_missed" or (
                code == "detector_error" and detail.startswith(("deadline_missed", "inference_timeout", "queue_full"))
            ):
                timing += 1

    def pct(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else None

    stage_cpu = cpu_by_stage(cpu0, cpu1, names)
    batches = getattr(detector_stats, "batches", 0) or 0
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
        "fail_closed_for_timing": timing,
        "fail_closed": fail_closed,
        "alarms": sum(1 for o in outcomes if o.decision.route.diverts and not o.decision.fail_closed),
        "gates_whole_run": gates,
        "cpu_s_by_stage": stage_cpu,
        "runtime_cpu_cores": round(sum(stage_cpu.values()) / elapsed, 2),
        "emulator_process_cpu_cores": round((child_cpu1 - child_cpu0) / elapsed, 2),
        "detector": {
            "batches": batches,
            "scans_per_batch": round(getattr(detector_stats, "submitted", 0) / batches, 2) if batches else None,
            "estimated_batch1_ms": round(getattr(detector_stats, "estimated_batch1_ms", 0.0), 1),
            "failed": getattr(detector_stats, "failed", None),
        },
    }


def child_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


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
    parser.add_argument(
        "--max-batch", type=int, default=1, help="detector micro-batch limit (1: every scan runs at once)"
    )
    parser.add_argument(
        "--tta",
        choices=("package", "none", "h", "hv", "d4"),
        default="package",
        help="detector test-time augmentation (package: as model.yaml says, like the line)",
    )
    parser.add_argument(
        "--verifier",
        choices=("package", "off"),
        default="package",
        help="the package's second-look verifier, when it has one (package: like the line)",
    )
    parser.add_argument("--model", type=Path, help="model package to run (default: the shipped one)")
    parser.add_argument("--parcels", type=int, default=10, help="distinct simulated parcels per line (cycled)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "line.json")
    parser.add_argument("--_emulators", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._emulators:
        return emulators_main(args._emulators)
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / ".ultralytics"))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-line-") as tmp:
        workdir = Path(tmp)
        model, model_note = prepare_model(workdir, args.model)
        largest_ok = 0
        for n in (int(x) for x in args.lines.split(",")):
            print(f"== {n} line(s): simulating and running {args.duration:.0f} s ...", flush=True)
            result = run_n(n, args, model, workdir)
            results.append(result)
            print(json.dumps(result), flush=True)
            if result["deadline_misses"] or result["fail_closed_for_timing"]:
                break
            largest_ok = n
    report = {
        "benchmark": "screening line: N emulated lines, 2.5 m/s, parcels 0.3-0.8 m, gaps >= 0.2 m, 2.0 s entry-to-gate",
        "model": model_note,
        "detector_tta": args.tta,
        "detector_verifier": args.verifier,
        "largest_n_without_misses": largest_ok,
        "criterion": "no deadline misses and no parcel failed closed for timing (detector deadline/timeout/queue full)",
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
        "note": "emulators run in a child process on the same 2 cores; the machine is shared with other work (see loadavg)",
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"largest N without deadline misses: {largest_ok}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
