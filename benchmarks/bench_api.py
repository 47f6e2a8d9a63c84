"""Load test of the review API on loopback while a screening line writes to the same journal.

Three phases of ``--seconds`` each (bounded in time and in request count):

1. the line writer alone: a separate process appends parcels (7 events each, one durable
   transaction per event, SQLite WAL + synchronous=FULL) at ``--parcels-per-s``;
2. the writer + ``--clients`` HTTP clients hammering ``GET /api/queue``;
3. the writer + clients fetching ``GET /api/parcels/{id}/images/pseudo.png`` across ``--parcels`` parcels.

The API runs in its own process under uvicorn, as in production. Reported: requests/s, p50 and
p99 latency per route, and the writer's per-event append latency (p50/p99/max) in each phase:
the journal's share of the line's decision latency.

    .venv/bin/python benchmarks/bench_api.py            # writes benchmarks/results/api.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.api.helpers: the same parcel builder as the API tests

PASSWORD = "benchmark-password"


def _pct(values: list[float], q: float) -> float | None:
    from smartscreen.review.models import percentile

    return percentile(values, q)


def _serve(journal_url: str, image_dir: str, port: int, nice: int) -> None:
    import uvicorn

    os.nice(nice)  # the review service is best effort; the line keeps its priority
    from smartscreen.api import create_app
    from smartscreen.config import ApiConfig

    app = create_app(ApiConfig(port=port), journal_url, Path(image_dir))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _writer(
    journal_url: str,
    image_dir: str,
    rate: float,
    ready: mp.Event,
    stop: mp.Event,
    out: mp.Queue,
    blob: bytes,  # type: ignore[type-arg]
) -> None:
    """A line: appends parcels event by event at ``rate`` parcels/s; reports each append's latency."""
    from smartscreen.journal import Database, FsImageStore, Journal
    from tests.api.helpers import parcel_events

    journal = Journal(Database.open(journal_url))
    images = FsImageStore(Path(image_dir))
    sha = images.put(blob)
    ready.set()
    latencies: list[float] = []
    lags: list[float] = []
    n = 0
    period = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        n += 1
        lags.append((time.monotonic() - next_at) * 1e3)
        for event in parcel_events(
            f"W1-{os.getpid()}-{n}", sha, centre_id="c1", line_id="W1", entered_at_ns=time.time_ns()
        ):
            t0 = time.perf_counter()
            journal.append(event)
            latencies.append((time.perf_counter() - t0) * 1e3)
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
    out.put((n, latencies, lags))


def _load_process(
    url: str,
    token: str,
    paths: list[str],
    clients: int,
    seconds: float,
    max_requests: int,
    nice: int,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    os.nice(nice)  # operators' browsers run on other machines; here they share the two cores with the line
    out.put(_load(url, token, paths, clients, seconds, max_requests))


def _load(url: str, token: str, paths: list[str], clients: int, seconds: float, max_requests: int) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(max_requests))

    def worker(k: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            i = k
            while time.monotonic() < deadline and next(counter, None) is not None:
                t0 = time.perf_counter()
                r = client.get(paths[i % len(paths)])
                dt = (time.perf_counter() - t0) * 1e3
                i += clients
                with lock:
                    latencies.append(dt)
                    if r.status_code != 200:
                        errors += 1

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_pct(latencies, 50) or 0, 2),
        "p99_ms": round(_pct(latencies, 99) or 0, 2),
    }


def _phase(
    journal_url: str, image_dir: str, args: argparse.Namespace, blob: bytes, load: tuple[object, ...] | None
) -> dict[str, object]:
    ctx = mp.get_context("spawn")
    stop, ready = ctx.Event(), ctx.Event()
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    writer = ctx.Process(target=_writer, args=(journal_url, image_dir, args.parcels_per_s, ready, stop, out, blob))
    writer.start()
    ready.wait(60)  # the writer has imported everything and opened the journal
    started = time.monotonic()
    result: dict[str, object] = {}
    if load is not None:
        results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        loader = ctx.Process(
            target=_load_process, args=(*load, args.seconds, args.max_requests, args.api_nice, results)
        )
        loader.start()
        result["api"] = results.get(timeout=args.seconds + 120)
        loader.join(30)
    else:
        time.sleep(args.seconds)
    stop.set()
    duration_s = time.monotonic() - started
    n, latencies, lags = out.get(timeout=60)
    writer.join(30)
    result["writer"] = {
        "seconds": round(duration_s, 1),
        "parcels": n,
        "parcels_expected": int(duration_s * args.parcels_per_s),
        "events": len(latencies),
        "append_p50_ms": round(_pct(latencies, 50) or 0, 2),
        "append_p99_ms": round(_pct(latencies, 99) or 0, 2),
        "append_max_ms": round(max(latencies), 2) if latencies else None,
        "decision_event_p99_ms": round(_pct(latencies[4::7], 99) or 0, 2),
        "parcel_start_lag_p99_ms": round(_pct(lags, 99) or 0, 2),
        "parcel_start_lag_max_ms": round(max(lags), 2) if lags else None,
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of each phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap on requests per phase")
    parser.add_argument("--parcels", type=int, default=40, help="parcels in the journal before the run")
    parser.add_argument("--parcels-per-s", type=float, default=6.0, help="writer rate (3 lines at 2 parcels/s)")
    parser.add_argument("--distinct-scans", type=int, default=16, help="distinct simulated raw scans")
    parser.add_argument("--channels", type=int, default=512, help="detector channels of the simulated scans")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the three phases, interleaved")
    parser.add_argument("--api-nice", type=int, default=10, help="niceness of the API server and of the clients")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "api.json")
    args = parser.parse_args()

    from smartscreen.review.models import Role
    from smartscreen.review.service import ReviewService
    from tests.api.helpers import add_parcel, raw_scan_blob

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        journal_url = f"sqlite:///{tmp}/journal.db"
        image_dir = f"{tmp}/images"
        service = ReviewService.open(journal_url, Path(image_dir))
        service.accounts.create("bench", PASSWORD, centre_id="c1", role=Role.OPERATOR)
        now = time.time_ns()
        blobs = [raw_scan_blob(seed, channels=args.channels) for seed in range(args.distinct_scans)]
        ids = []
        for i in range(args.parcels):
            pid = f"L1-{i:06d}"
            add_parcel(
                service.journal,
                service.images,
                pid,
                entered_at_ns=now - (args.parcels - i) * 10**9,
                scan_blob=blobs[i % 8],
            )
            ids.append(pid)
        service.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        ctx = mp.get_context("spawn")
        server = ctx.Process(target=_serve, args=(journal_url, image_dir, port, args.api_nice), daemon=True)
        server.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start within 60 s")
            time.sleep(0.2)
        token = httpx.post(url + "/api/auth/login", json={"username": "bench", "password": PASSWORD}).json()["token"]
        # first views: each distinct scan rendered from raw (calibration, material LUT, pseudo-colour, PNG)
        cold: list[float] = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            for pid in ids[: len(blobs)]:
                t0 = time.perf_counter()
                assert client.get(f"/api/parcels/{pid}/images/pseudo.png").status_code == 200
                cold.append((time.perf_counter() - t0) * 1e3)
        first_view = {
            "requests": len(cold),
            "p50_ms": round(_pct(cold, 50) or 0, 2),
            "p99_ms": round(_pct(cold, 99) or 0, 2),
        }
        queue_paths = ["/api/queue?limit=50", "/api/queue?limit=50&line=L1", "/api/queue?limit=50&class=knife"]
        image_paths = [f"/api/parcels/{pid}/images/pseudo.png" for pid in ids]
        try:
            phases: dict[str, list[dict[str, object]]] = {
                "writer_alone": [],
                "writer_with_queue_load": [],
                "writer_with_image_load": [],
            }
            for _ in range(args.repeat):  # interleaved, so background load on the machine hits every phase alike
                phases["writer_alone"].append(_phase(journal_url, image_dir, args, blobs[0], None))
                phases["writer_with_queue_load"].append(
                    _phase(journal_url, image_dir, args, blobs[0], (url, token, queue_paths, args.clients))
                )
                phases["writer_with_image_load"].append(
                    _phase(journal_url, image_dir, args, blobs[0], (url, token, image_paths, args.clients))
                )
        finally:
            server.terminate()
            server.join(10)
    result = {
        "benchmark": "review API on loopback while a line writes to the same SQLite journal",
        "command": "python benchmarks/bench_api.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "image_first_view_no_load": first_view,
        "phases": phases,
        "note": "first views render each raw scan through the imaging chain; under load the image route serves "
        "its PNG cache (ETag-keyed), as for an operator toggling layers and paging back; no client cache",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"image_first_view_no_load": first_view, **result["phases"]}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
