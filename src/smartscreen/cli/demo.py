"""``smartscreen demo``: a small emulated sorting centre with the review page, and a live summary.

Two lines (config/demo-centre.yaml) with emulated GigE Vision scanners and serial I/O boards on
loopback, one gate through the I/O board and one emulated PLC over Modbus TCP, simulated parcels
(some with threats) labelled with the demo waybills, the shipped model and the review API.
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path

HELP = "Start an emulated centre (2 lines, scanners, I/O boards, PLC, shipped model, review page) with a live summary."

DEFAULT_CONFIG = Path("config/demo-centre.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="demo configuration (default: %(default)s)")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds to run, 0 = until Ctrl-C (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=None, help="review page port (default: the config's api.port)")
    parser.add_argument("--no-api", action="store_true", help="do not start the review API")
    parser.add_argument("--keep", action="store_true", help="keep the journal and images of earlier demo runs")
    parser.add_argument("--summary-every", type=float, default=2.0, help="seconds between summary lines")


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _start_api(config: object, port: int | None) -> tuple[object, threading.Thread, str, dict[str, tuple[object, str]]]:
    import uvicorn

    from smartscreen.api.app import create_app_for
    from smartscreen.gate.drivers import free_tcp_port
    from smartscreen.journal.journal import Journal  # noqa: F401  (creates the journal tables first)
    from smartscreen.review.accounts import seed_demo_accounts
    from smartscreen.review.service import ReviewService

    api = config.api  # type: ignore[attr-defined]
    host = api.host
    port = port if port is not None else api.port
    if not port or not _port_free(host, port):
        wanted = port
        port = free_tcp_port(host)
        if wanted:
            print(f"port {wanted} is busy; the review page uses port {port}")
    settings = api.model_copy(update={"port": port})
    service = ReviewService.open(config.journal.url, config.journal.image_dir)  # type: ignore[attr-defined]
    accounts = seed_demo_accounts(service.accounts, config.centre.id)  # type: ignore[attr-defined]
    app = create_app_for(settings, service)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="review-api", daemon=True)
    thread.start()
    end = time.monotonic() + 10
    while not server.started and time.monotonic() < end:
        time.sleep(0.05)
    return server, thread, f"http://{host}:{port}/", accounts  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    from smartscreen.cli.run import install_stop_signals
    from smartscreen.config import load_config
    from smartscreen.errors import ConfigError
    from smartscreen.fusion.waybills import url_path
    from smartscreen.runtime import ScreeningCentre

    config = load_config(args.config)
    package = config.detector.package
    if not (package / "model.onnx").exists() or not (package / "model.yaml").exists():
        raise ConfigError(
            f"the demo needs the shipped model package at {package} (model.onnx + model.yaml); "
            "it is committed with the repository, or build one with `smartscreen train` + `smartscreen export`"
        )
    if not args.keep:
        journal_path = url_path(config.journal.url) if config.journal.url.startswith("sqlite:") else None
        for path in (config.journal.image_dir, journal_path.parent if journal_path else None):
            if path is not None and path.exists() and "demo" in str(path):
                shutil.rmtree(path)
    stop = threading.Event()
    install_stop_signals(stop)
    print(
        f"smartscreen demo: centre {config.centre.id}, {len(config.lines)} emulated lines; simulating parcels ...",
        flush=True,
    )
    server = thread = None
    url = ""
    if not args.no_api and config.api.enabled:
        server, thread, url, accounts = _start_api(config, args.port)
    centre = ScreeningCentre(config).start()
    try:
        if url:
            print(f"review page: {url}  (demo accounts, centre {config.centre.id}):", flush=True)
            for username, (role, password) in accounts.items():
                print(f"  {username:<11} {getattr(role, 'value', role):<10} password {password}", flush=True)
        if centre.metrics_url:
            print(f"Prometheus metrics: {centre.metrics_url}", flush=True)
        for line in config.lines:
            print(f"  line {line.id}: scanner {line.scanner}  gate {line.gate}", flush=True)
        how = f"for {args.duration:.0f} s" if args.duration else "until Ctrl-C"
        print(f"running {how}; Ctrl-C stops early", flush=True)
        started = time.monotonic()
        next_summary = started + args.summary_every
        while not stop.wait(0.2):
            now = time.monotonic()
            if now >= next_summary:
                print(centre.summary_line(), flush=True)
                next_summary = now + args.summary_every
            if args.duration and now - started >= args.duration:
                break
        before_stop = centre.summary_line()
    finally:
        centre.stop()
        if server is not None:
            server.should_exit = True  # type: ignore[attr-defined]
            thread.join(timeout=5)  # type: ignore[union-attr]
    summary = centre.summary()
    print("final:", before_stop)
    print(f"  fail-closed by reason (including parcels in flight at shutdown): {summary['fail_closed']}")
    if url:
        print(
            f"  the review page kept the alarms: {url} (start it again with `smartscreen serve --config {args.config}`)"
        )
    return 0
