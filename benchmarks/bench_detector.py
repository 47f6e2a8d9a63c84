"""Detector benchmark: this engine vs ultralytics predict vs a bare onnxruntime loop, same model, same images.

    python benchmarks/bench_detector.py                      # CPU, batches 1, 4, 8 -> results/detector.json
    python benchmarks/bench_detector.py --images /tmp/synth  # use `smartscreen synth` output (images/*.png)
    python benchmarks/bench_detector.py --providers cuda --batches 1,4,8,16,32,64 --out results/detector-cuda.json

Modes, each at every batch size, on the same list of parcel images:

(a) ``engine``: ``OnnxDetector.detect_images(batch)`` - the public API, including content crop,
    letterbox, decode, NMS and mapping boxes back to image pixels;
(b) ``ultralytics``: ``YOLO("model.onnx").predict(batch)`` with its defaults (run in a child process,
    because importing ultralytics changes OpenCV's thread count for the whole process);
(c) ``onnxruntime``: ``session.run`` alone over pre-made float tensors of exactly the shapes the
    engine feeds for each batch (same session options): the limit for that model on this machine.

Model: the shipped package ``models/smartscreen-yolo11n`` when present, else a YOLO11n
(nc = 15) built from ultralytics' ``yolo11.yaml`` (random weights, nothing downloaded) and
exported to a dynamic ONNX in a temporary directory. Images: the PNGs of ``--images``, else
generated parcel-like pseudo-colour scans (1 024 channels, white air, a parcel with
organic/inorganic/metal objects). Cost does not depend on weights, so random weights are
valid for speed; with them ultralytics and the engine see no detections.

The engine and the bare loop alternate call by call on the same images, so both see the same
machine state; ultralytics (another process) takes turns with them round by round.
Latency figures are per call (one batch), images/s = images / total time. The machine load
(``/proc/loadavg``) is recorded before and after each phase: the CPU is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "smartscreen-yolo11n"


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_sha() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ultralytics_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("YOLO_CONFIG_DIR", str(ROOT / ".ultralytics"))
    env.setdefault("YOLO_OFFLINE", "1")
    env.setdefault("YOLO_AUTOINSTALL", "False")
    return env


# ----------------------------------------------------------------------------- images


def generate_parcels(count: int, seed: int = 0) -> list[np.ndarray]:
    """Parcel-like pseudo-colour line-scan images, RGB uint8, 1 024 channels wide, 500-1 500 lines."""
    import cv2

    rng = np.random.default_rng(seed)
    palette = [(235, 150, 60), (250, 190, 110), (90, 170, 90), (60, 140, 200), (40, 70, 160), (30, 30, 40)]
    images = []
    for _ in range(count):
        h = int(rng.integers(500, 1500))
        img = np.full((h, 1024, 3), 255, np.uint8)
        pw, ph = int(rng.integers(300, 900)), int(rng.integers(300, h - 60))
        x0, y0 = int(rng.integers(20, 1024 - pw - 20)), int(rng.integers(20, h - ph - 20))
        img[y0 : y0 + ph, x0 : x0 + pw] = (245, 215, 170)
        for _ in range(int(rng.integers(4, 14))):
            colour = tuple(int(c) for c in palette[int(rng.integers(len(palette)))])
            cx, cy = int(rng.integers(x0, x0 + pw)), int(rng.integers(y0, y0 + ph))
            if rng.random() < 0.5:
                axes = (int(rng.integers(10, 120)), int(rng.integers(10, 120)))
                cv2.ellipse(img, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
            else:
                w2, h2 = int(rng.integers(10, 200)), int(rng.integers(5, 60))
                box = cv2.boxPoints(((cx, cy), (w2, h2), float(rng.uniform(0, 180)))).astype(np.int32)
                cv2.fillConvexPoly(img, box, colour)
        noise = rng.normal(0, 3, img.shape[:2])[..., None]
        inside = img.min(axis=2, keepdims=True) < 250
        img = np.where(inside, np.clip(img + noise, 0, 255), img).astype(np.uint8)
        images.append(img)
    return images


def load_images(directory: Path, count: int) -> list[np.ndarray]:
    from smartscreen.detection.images import read_image_rgb

    folder = directory / "images" if (directory / "images").is_dir() else directory
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:count]
    if not paths:
        raise SystemExit(f"no PNG/JPEG images in {folder}")
    return [read_image_rgb(p) for p in paths]


# ----------------------------------------------------------------------------- model


def export_yolo11n(workdir: Path) -> Path:
    """YOLO11n (nc = 15) from ultralytics' yaml, random weights, dynamic ONNX; run in a child process."""
    code = """
import pathlib, yaml, ultralytics
from ultralytics import YOLO
src = pathlib.Path(ultralytics.__file__).parent / "cfg/models/11/yolo11.yaml"
cfg = yaml.safe_load(src.read_text()); cfg["nc"] = 15
pathlib.Path("yolo11n.yaml").write_text(yaml.safe_dump(cfg))
YOLO("yolo11n.yaml").export(format="onnx", imgsz=640, dynamic=True, simplify=True, batch=1, device="cpu")
"""
    subprocess.run([sys.executable, "-c", code], cwd=workdir, env=ultralytics_env(), check=True, capture_output=True)
    return workdir / "yolo11n.onnx"


def prepare_model(args: argparse.Namespace, workdir: Path) -> tuple[Path, str]:
    from smartscreen.detection.package import TrainingInfo, write_model_package

    if args.model is not None:
        return Path(args.model), f"package {args.model}"
    if (SHIPPED / "model.yaml").is_file():
        return SHIPPED, "shipped package models/smartscreen-yolo11n"
    onnx_file = export_yolo11n(workdir)
    pkg = write_model_package(
        workdir / "pkg",
        onnx_file,
        name="yolo11n-random",
        version="0",
        architecture="yolo11n",
        training=TrainingInfo(data_description="none: random weights, for speed only"),
    )
    return pkg.directory, "YOLO11n from yolo11.yaml (nc=15, random weights), dynamic ONNX export"


# ----------------------------------------------------------------------------- timing


def summarise(latencies_s: list[float], images: int, calls_per_pass: int) -> dict[str, float]:
    """Throughput over all calls, per-call latency percentiles, and the fastest/median full pass.

    On a shared, loaded CPU the fastest pass over the image set is the best estimate of the
    unloaded speed; the median pass and the overall figure show what the load did.
    """
    lat_ms = np.array(latencies_s) * 1e3
    n_passes = len(latencies_s) // calls_per_pass
    pass_s = np.array(latencies_s[: n_passes * calls_per_pass]).reshape(n_passes, calls_per_pass).sum(axis=1)
    per_pass_images = images / (len(latencies_s) / calls_per_pass)
    return {
        "images_per_s": round(images / float(np.sum(latencies_s)), 2),
        "best_pass_images_per_s": round(per_pass_images / float(pass_s.min()), 2),
        "median_pass_images_per_s": round(per_pass_images / float(np.median(pass_s)), 2),
        "passes": n_passes,
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 2),
        "mean_ms": round(float(lat_ms.mean()), 2),
        "calls": len(latencies_s),
        "images": images,
    }


def timed_passes(run_chunk, chunks: list, min_seconds: float, min_passes: int = 2) -> tuple[list[float], int]:  # type: ignore[no-untyped-def,type-arg]
    latencies: list[float] = []
    images = 0
    start = time.perf_counter()
    passes = 0
    while passes < min_passes or time.perf_counter() - start < min_seconds:
        for chunk in chunks:
            t0 = time.perf_counter()
            run_chunk(chunk)
            latencies.append(time.perf_counter() - t0)
            images += len(chunk)
        passes += 1
    return latencies, images


def paired_passes(  # type: ignore[no-untyped-def]
    run_a,
    chunks_a: list,
    name_a: str,
    run_b,
    chunks_b: list,
    name_b: str,
    min_seconds: float,  # type: ignore[type-arg]
) -> dict[str, tuple[list[float], int]]:
    """Two modes over the same chunks, alternating call by call; latencies and image counts per mode."""
    lat: dict[str, list[float]] = {name_a: [], name_b: []}
    images = 0
    start = time.perf_counter()
    while not lat[name_a] or time.perf_counter() - start < min_seconds:
        for chunk_a, chunk_b in zip(chunks_a, chunks_b, strict=True):
            t0 = time.perf_counter()
            run_a(chunk_a)
            t1 = time.perf_counter()
            run_b(chunk_b)
            t2 = time.perf_counter()
            lat[name_a].append(t1 - t0)
            lat[name_b].append(t2 - t1)
            images += len(chunk_a)
    return {name_a: (lat[name_a], images), name_b: (lat[name_b], images)}


def chunked(items: list, size: int) -> list[list]:  # type: ignore[type-arg]
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    return [c for c in chunks if len(c) == size]  # equal batch sizes only


class UltralyticsWorker:
    """ultralytics in a child process (its import changes process-wide OpenCV settings), driven pass by pass."""

    def __init__(self, onnx_path: Path, images_npz: Path, provider: str) -> None:
        cmd = [sys.executable, __file__, "--_ultralytics-worker", str(onnx_path), str(images_npz), provider]
        self.proc = subprocess.Popen(
            cmd,
            env=ultralytics_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.version = self._ask("version")

    def _ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the ultralytics worker died (exit {self.proc.poll()})")
        return answer.strip()

    def passes(self, batch: int, seconds: float, imgsz: int = 0) -> tuple[list[float], int]:
        """Timed passes of ``predict``; ``imgsz`` 0 keeps ultralytics' default image size."""
        reply = json.loads(self._ask(f"run {batch} {seconds} {imgsz}"))
        return reply["latencies_s"], reply["images"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self._ask("quit")
            self.proc.wait(timeout=30)


def bench_all(
    package_dir: Path,
    images: list[np.ndarray],
    batches: list[int],
    args: argparse.Namespace,
    worker: UltralyticsWorker | None,
) -> dict[str, dict[str, object]]:
    """Every mode at every batch size; within a batch size the modes take turns, round by round (the engine
    and the bare loop also call by call)."""
    import onnxruntime as ort

    from smartscreen.detection.engine import OnnxDetector, plan_batches, resolve_providers, session_options
    from smartscreen.detection.package import load_model_package

    nominal = max(load_model_package(package_dir).manifest.input.size_hw)
    spins = [args.spin_wait, not args.spin_wait] if args.compare_spin else [args.spin_wait]
    results: dict[str, dict[str, object]] = {}
    for spin in spins:
        tag = "" if spin == args.spin_wait else ("_spin" if spin else "_nospin")
        results[f"engine{tag}"] = {"spin_wait": spin}
        results[f"onnxruntime{tag}"] = {"spin_wait": spin}
    if worker is not None:
        results["ultralytics"] = {"version": worker.version, "imgsz": "default (640)"}
        if nominal != 640:  # ultralytics' default image size differs from the model's: also run it matched
            results["ultralytics_imgsz_matched"] = {"imgsz": nominal}
    for b in batches:
        chunks = chunked(images, b)
        modes: dict[str, object] = {}  # name -> callable running one timed pass for `seconds`
        engines: dict[str, OnnxDetector] = {}
        for spin in spins:
            tag = "" if spin == args.spin_wait else ("_spin" if spin else "_nospin")
            det = OnnxDetector.from_package(
                package_dir,
                providers=args.providers,
                intra_op_threads=args.threads,
                max_batch=b,
                spin_wait=spin,
                tta=args.tta,
            )
            engines[f"engine{tag}"] = det
            # the exact tensor shapes the engine feeds for each chunk, as pre-made random tensors
            rng = np.random.default_rng(0)
            tensors: list[list[np.ndarray]] = []
            for chunk in chunks:
                layouts = [det.plan(img) for img in chunk]
                calls = []
                for group in plan_batches(layouts, b, det.shape_policy):
                    h = max(layouts[i].input_hw[0] for i in group)
                    w = max(layouts[i].input_hw[1] for i in group)
                    calls.append(rng.random((len(group), 3, h, w), dtype=np.float32))
                tensors.append(calls)
            session = ort.InferenceSession(
                str(det.package.onnx_path),
                session_options(args.threads, spin_wait=spin),  # exactly the engine's session options
                providers=resolve_providers(args.providers, ort.get_available_providers()),
            )
            name = det.package.manifest.input.name

            def run_engine(chunk: list[np.ndarray], det: OnnxDetector = det) -> None:
                det.detect_images(chunk)

            def run_ort(calls: list[np.ndarray], session: ort.InferenceSession = session, name: str = name) -> None:
                for tensor in calls:
                    session.run(None, {name: tensor})

            for chunk, calls in zip(chunks[:2], tensors[:2], strict=True):  # warm-up
                run_engine(chunk)
                run_ort(calls)
            # engine and bare loop take turns call by call (same images, same moment): load drift on the
            # shared CPU hits both alike, which round-by-round turns cannot promise
            modes[f"engine{tag}+onnxruntime{tag}"] = (
                lambda sec, fe=run_engine, fo=run_ort, c=chunks, t=tensors, e=f"engine{tag}", o=f"onnxruntime{tag}": (
                    paired_passes(fe, c, e, fo, t, o, sec)
                )
            )
            results[f"onnxruntime{tag}"][str(b)] = {
                "input_shapes_chw": sorted({tuple(int(x) for x in t.shape[1:]) for c in tensors for t in c}),
                "session_runs_per_pass": sum(len(c) for c in tensors),
            }
        if worker is not None:
            worker.passes(b, 0.0)  # warm-up
            modes["ultralytics"] = lambda sec, bb=b: {"ultralytics": worker.passes(bb, sec)}
            if "ultralytics_imgsz_matched" in results:
                worker.passes(b, 0.0, nominal)
                modes["ultralytics_imgsz_matched"] = lambda sec, bb=b: {
                    "ultralytics_imgsz_matched": worker.passes(bb, sec, nominal)
                }
        collected: dict[str, tuple[list[float], int]] = {}
        per_round = args.min_seconds / args.rounds
        for _ in range(args.rounds):  # take turns so load drift on the shared CPU hits every mode alike
            for run in modes.values():
                for mode, (lat, n) in run(per_round).items():  # type: ignore[operator]
                    old_lat, old_n = collected.get(mode, ([], 0))
                    collected[mode] = (old_lat + lat, old_n + n)
        for mode, (lat, n) in collected.items():
            cell = results[mode].setdefault(str(b), {})
            assert isinstance(cell, dict)
            cell.update(summarise(lat, n, len(chunks)))
        for mode, det in engines.items():  # one instrumented pass for the stage split
            det.totals = type(det.totals)()
            n_detections = sum(len(d) for chunk in chunks for d in det.detect_images(chunk))
            cell = results[mode][str(b)]
            assert isinstance(cell, dict)
            cell["per_image_stage_ms"] = {k: round(v, 3) for k, v in det.totals.per_image_ms().items()}
            cell["detections_per_image"] = round(n_detections / (len(chunks) * b), 2)
            cell["providers_in_use"] = list(det.providers_in_use)
            cell["shape_policy"] = det.shape_policy
        print(
            f"batch {b}: " + ", ".join(f"{m} {results[m][str(b)]['images_per_s']} img/s" for m in collected),  # type: ignore[index]
            file=sys.stderr,
        )
    return results


def ultralytics_worker(onnx_path: str, images_npz: str, provider: str) -> None:
    """Child process: ``YOLO(onnx).predict(list of images)`` with defaults, one timed pass per request."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)  # answers go here; anything else printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import ultralytics
    from ultralytics import YOLO

    data = np.load(images_npz)
    images = [np.ascontiguousarray(data[k][:, :, ::-1]) for k in sorted(data.files)]  # ultralytics takes BGR
    device = "cuda:0" if provider in ("cuda", "tensorrt") else "cpu"
    model = YOLO(onnx_path, task="detect")
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            print("bye", file=protocol, flush=True)
            return
        if words[0] == "version":
            print(ultralytics.__version__, file=protocol, flush=True)
            continue
        batch, seconds, imgsz = int(words[1]), float(words[2]), int(words[3])
        chunks = chunked(images, batch)
        extra = {"imgsz": imgsz} if imgsz else {}

        def run(chunk: list[np.ndarray], extra: dict[str, int] = extra) -> None:
            model.predict(chunk, verbose=False, device=device, **extra)

        latencies, n = timed_passes(run, chunks, seconds, min_passes=1)
        print(json.dumps({"latencies_s": latencies, "images": n}), file=protocol, flush=True)


# ----------------------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_ultralytics-worker":
        ultralytics_worker(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model package directory (default: shipped, else exported)")
    parser.add_argument(
        "--images", type=Path, help="directory of PNG/JPEG parcel images (e.g. smartscreen synth output)"
    )
    parser.add_argument("--count", type=int, default=32, help="number of images (default 32)")
    parser.add_argument("--batches", default="1,4,8")
    parser.add_argument("--providers", default="cpu", help="comma separated, e.g. cuda or cpu")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (engine and bare loop)")
    parser.add_argument("--min-seconds", type=float, default=6.0, help="timed seconds per mode and batch size")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the three modes per batch size")
    parser.add_argument("--skip-ultralytics", action="store_true")
    parser.add_argument(
        "--compare-spin",
        action="store_true",
        help="also run the engine and the bare loop with the other spin setting",
    )
    parser.add_argument(
        "--spin-wait",
        action="store_true",
        help="let onnxruntime threads spin (engine and bare loop); the engine's default is off (shared CPU)",
    )
    parser.add_argument(
        "--tta",
        choices=("none", "h", "hv", "d4"),
        default="none",
        help="engine test-time augmentation (default none: one inference per image, comparable with the bare loop)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    batches = [int(x) for x in args.batches.split(",")]
    out_path = args.out or ROOT / "benchmarks" / "results" / (
        "detector.json" if args.providers == ["cpu"] else f"detector-{args.providers[0]}.json"
    )
    record: dict[str, object] = {
        "benchmark": "detector",
        "git_sha": git_sha(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "load_avg": {"start": loadavg()},
        "settings": {
            "batches": batches,
            "providers": args.providers,
            "intra_op_threads": args.threads,
            "spin_wait": args.spin_wait,
            "engine_tta": args.tta,
            "min_seconds_per_cell": args.min_seconds,
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-detector-") as tmp:
        workdir = Path(tmp)
        package_dir, model_desc = prepare_model(args, workdir)
        if args.images is not None:
            images = load_images(args.images, args.count)
            image_desc = f"{len(images)} images from {args.images}"
        else:
            images = generate_parcels(args.count)
            image_desc = f"{len(images)} generated parcel-like pseudo-colour scans, 1024 wide, 500-1500 lines"
        import onnxruntime

        from smartscreen.detection.package import load_model_package

        package = load_model_package(package_dir)
        record["model"] = {
            "description": model_desc,
            "model_id": package.model_id,
            "input": package.manifest.input.model_dump(mode="json"),
            "onnxruntime": onnxruntime.__version__,
        }
        record["images"] = {
            "description": image_desc,
            "sizes_hw": [list(i.shape[:2]) for i in images],
        }
        worker = None
        if not args.skip_ultralytics:
            npz = workdir / "images.npz"
            np.savez(npz, **{f"{k:04d}": img for k, img in enumerate(images)})
            worker = UltralyticsWorker(package.onnx_path, npz, args.providers[0])
        try:
            results = bench_all(package_dir, images, batches, args, worker)
        finally:
            if worker is not None:
                worker.close()
        record["load_avg"]["end"] = loadavg()  # type: ignore[index]
    record["results"] = results
    ratios: dict[str, dict[str, float | bool]] = {}
    for b in map(str, batches):
        cell: dict[str, float | bool] = {}
        for figure in ("images_per_s", "best_pass_images_per_s"):
            for suffix in ("", "_spin", "_nospin"):
                if f"engine{suffix}" not in results:
                    continue
                eng = results[f"engine{suffix}"][b][figure]  # type: ignore[index]
                bare = results[f"onnxruntime{suffix}"][b][figure]  # type: ignore[index]
                cell[f"engine{suffix}_over_onnxruntime{suffix}.{figure}"] = round(eng / bare, 3)
                cell[f"engine{suffix}_meets_0.9x_onnxruntime{suffix}.{figure}"] = eng >= 0.9 * bare
                for other in ("ultralytics", "ultralytics_imgsz_matched"):
                    ul = results.get(other, {})
                    if isinstance(ul, dict) and b in ul:
                        cell[f"engine{suffix}_over_{other}.{figure}"] = round(eng / ul[b][figure], 3)
                        if other == "ultralytics":
                            cell[f"engine{suffix}_meets_1.3x_ultralytics.{figure}"] = eng >= 1.3 * ul[b][figure]
        ratios[b] = cell
    record["ratios"] = ratios
    record["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(ratios, indent=1))
    print(f"wrote {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
