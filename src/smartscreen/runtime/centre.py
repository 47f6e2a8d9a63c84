"""The composition root: one place that builds and wires every stage of a sorting centre.

Start order: journal (with crash recovery) -> image store -> policy -> waybill lookup ->
detector and micro-batcher -> metrics -> per line: emulated hardware (``sim://``), devices
by URL, imaging, :class:`~smartscreen.runtime.line.ScreeningLine` -> watchdog.
:meth:`ScreeningCentre.stop` stops them in reverse order, letting the gate stages command
what is still pending.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from smartscreen.config import DetectorConfig, LineConfig, SmartScreenConfig
from smartscreen.domain.decision import Decision, ReasonCode
from smartscreen.domain.events import DeadlineMissed, ParcelDecided, ParcelEvent
from smartscreen.domain.ports import Detector, GateActuator, LineSource
from smartscreen.errors import ConfigError
from smartscreen.fusion.waybills import open_waybill_lookup, read_waybill_file, url_path
from smartscreen.gate.drivers import IoBoardGate, ModbusGate, ModbusPlcServer, PlcSimGate
from smartscreen.gate.timing import GateTiming
from smartscreen.journal import FsImageStore, Journal
from smartscreen.risk.policy import RiskPolicy, load_policy
from smartscreen.runtime.emulation import EmulatedSite, SimOptions, SimulatedBelt, scanner_params
from smartscreen.runtime.journal_writer import JournalWriter
from smartscreen.runtime.line import LineSettings, ScreeningLine
from smartscreen.runtime.metrics import LineMetrics
from smartscreen.runtime.replay import replay_belt, replay_source
from smartscreen.runtime.shared import ImagingStage, SharedStages
from smartscreen.runtime.waybill_stage import WaybillStage

logger = logging.getLogger(__name__)


@dataclass
class LineHandles:
    line: ScreeningLine
    site: EmulatedSite | None = None
    closers: list[object] = field(default_factory=list)


def recover_journal(journal: Journal, policy_version: str) -> int:
    """After a crash: parcels entered but never commanded or acknowledged get a recorded fail-closed outcome.

    Their gate deadlines have passed while the process was down; the PLC/board diverted them by its
    own default. Returns how many parcels were closed this way.
    """
    rows = journal.db.query(
        "SELECT parcel_id, route FROM journal_parcels WHERE gate_status IN ('pending', 'commanded')", ()
    )
    now = time.time_ns()
    events: list[ParcelEvent] = []
    for parcel_id, route in rows:
        if route is None:
            decision = Decision.fail_closed_reject(
                str(parcel_id), ReasonCode.DEADLINE_MISSED, "process restarted before a decision", policy_version, now
            )
            events.append(ParcelDecided(str(parcel_id), now, None, decision))
        events.append(DeadlineMissed(str(parcel_id), now, "restart", 0.0))
    if events:
        journal.append_many(events)
        logger.warning("journal recovery: %d parcels had no gate acknowledgement; recorded as missed", len(rows))
    return len(rows)


def _start_sequence() -> int:
    """Gate command sequences continue across restarts (time-based start) so no PLC sees a stale repeat."""
    return (time.time_ns() // 1_000_000) & 0x7FFFFFFF or 1


def bind_policy_to_model(policy: RiskPolicy, detector: DetectorConfig) -> tuple[RiskPolicy, DetectorConfig]:
    """The policy with ``threshold: model`` bound to the operating threshold recorded in the detector's package
    (for the test-time views the line runs), and the detector settings keeping detections down to the lowest
    score the policy counts."""
    from smartscreen.detection.package import load_model_package

    manifest = load_model_package(detector.package, check_onnx=False).manifest
    threshold = manifest.operating_threshold(detector.tta, detector.verifier)
    if policy.uses_model_threshold:
        if threshold is None:
            logger.warning(
                "policy %s: `threshold: model` but %s records no operating threshold for test-time views %r; "
                "using model_threshold_fallback %.3f",
                policy.version,
                manifest.model_id,
                detector.tta,
                policy.model_threshold_fallback,
            )
        else:
            measured_on = manifest.metrics.dataset if manifest.metrics else ""
            logger.info(
                "policy %s: `threshold: model` = %.4f (%s, %s)",
                policy.version,
                threshold,
                manifest.model_id,
                measured_on,
            )
    policy = policy.bind_model_threshold(threshold)
    conf = min(detector.conf_threshold, policy.lowest_cutoff())
    if conf < detector.conf_threshold:
        logger.info(
            "detector keeps detections from %.4f (the policy counts from there), not %.2f",
            conf,
            detector.conf_threshold,
        )
    return policy, detector.model_copy(update={"conf_threshold": conf})


class ScreeningCentre:
    def __init__(
        self,
        config: SmartScreenConfig,
        *,
        detector: Detector | None = None,
        belts: dict[str, SimulatedBelt] | None = None,
        journal_url: str | None = None,
    ) -> None:
        self.config = config
        self._detector = detector
        self._belts = belts or {}
        self.journal_url = journal_url or config.journal.url
        self.lines: dict[str, LineHandles] = {}
        self.metrics = LineMetrics()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._started_at = 0.0
        self.recovered = 0
        self.journal: Journal | None = None
        self.writer: JournalWriter | None = None
        self.batcher: object | None = None
        self.waybills: WaybillStage | None = None
        self._metrics_server: object | None = None
        self.metrics_url = ""

    # ---- start ---------------------------------------------------------------------------------
    def start(self) -> ScreeningCentre:
        cfg = self.config
        policy = load_policy(cfg.policy.path)
        self.journal = Journal.open(self.journal_url)
        self.recovered = recover_journal(self.journal, policy.version)
        self.writer = JournalWriter(self.journal).start()
        images = FsImageStore(cfg.journal.image_dir)
        self.waybills = WaybillStage(
            open_waybill_lookup(cfg.waybill.url, timeout_ms=cfg.waybill.timeout_ms, cache_size=cfg.waybill.cache_size)
        )
        policy, detector = self._bind_model(policy)
        try:
            policy.check_covers(detector.class_names, detector.model_id, str(cfg.policy.path))
        except ConfigError:
            self.stop()  # nothing screens with a model whose detections the policy would ignore
            raise
        from smartscreen.detection.batcher import MicroBatcher

        self.batcher = MicroBatcher(
            detector,
            max_batch=cfg.detector.max_batch,
            max_wait_ms=cfg.detector.max_wait_ms,
            max_queue=cfg.runtime.detector_queue,
            timeout_ms=cfg.detector.timeout_ms,
        ).start()
        shared = SharedStages(
            batcher=self.batcher,
            journal=self.writer,
            images=images,
            waybills=self.waybills,
            policy=policy,
            metrics=self.metrics,
        )
        if cfg.metrics.port is not None:
            from prometheus_client import start_http_server

            host = cfg.api.host  # the same interface the review API listens on
            server, _ = start_http_server(cfg.metrics.port, addr=host, registry=self.metrics.registry)
            self._metrics_server = server
            self.metrics_url = f"http://{host}:{server.server_port}/metrics"
        simulated = any(urlsplit(line.scanner).scheme in ("sim", "replay") for line in cfg.lines)
        codes = self._tracking_numbers() if simulated else ()
        # slow preparation first (simulated belts, material LUTs), while no belt is moving yet,
        # so no line starts streaming while another one is still being prepared
        self._sites: dict[str, EmulatedSite] = {}
        prepared: dict[str, ImagingStage] = {}
        try:
            for line_cfg in cfg.lines:
                site = self._prepare_site(line_cfg, codes)
                if site is not None:
                    self._sites[line_cfg.id] = site
                prepared[line_cfg.id] = ImagingStage(scanner_params(line_cfg))
            for line_cfg in cfg.lines:
                site = self._sites.pop(line_cfg.id, None)
                self.lines[line_cfg.id] = self._start_line(line_cfg, shared, site, prepared[line_cfg.id])
        except Exception:
            for site in self._sites.values():
                site.stop()
            self.stop()
            raise
        self._started_at = time.monotonic()
        self._watchdog = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self._watchdog.start()
        return self

    def _bind_model(self, policy: RiskPolicy) -> tuple[RiskPolicy, Detector]:
        if self._detector is not None:
            if policy.uses_model_threshold:
                logger.warning(
                    "policy %s: `threshold: model` with an injected detector; using model_threshold_fallback %.3f",
                    policy.version,
                    policy.model_threshold_fallback,
                )
            return policy.bind_model_threshold(None), self._detector
        from smartscreen.detection.engine import OnnxDetector

        policy, detector_config = bind_policy_to_model(policy, self.config.detector)
        return policy, OnnxDetector.from_config(detector_config)

    def _tracking_numbers(self) -> tuple[str, ...]:
        """Barcodes for emulated parcels: the waybill table's tracking numbers where it is a file."""
        url = self.config.waybill.url
        if urlsplit(url).scheme == "file":
            return tuple(r.tracking_no for r in read_waybill_file(url_path(url)))
        return ()

    def _prepare_site(self, line_cfg: LineConfig, codes: tuple[str, ...]) -> EmulatedSite | None:
        site: EmulatedSite | None = None
        scanner_scheme = urlsplit(line_cfg.scanner).scheme
        gate_parts = urlsplit(line_cfg.gate)
        if scanner_scheme == "sim":
            options = SimOptions.from_url(line_cfg.scanner)
            io_options = urlsplit(line_cfg.io_board)
            if io_options.scheme == "sim" and "io" in parse_qs(io_options.query):
                options = dataclasses.replace(options, io=parse_qs(io_options.query)["io"][-1])
            site = EmulatedSite(
                line_cfg, options, codes, with_plc=gate_parts.scheme == "plc-sim", belt=self._belts.get(line_cfg.id)
            ).start()
        elif scanner_scheme == "replay":
            if urlsplit(line_cfg.io_board).scheme != "sim":
                raise ConfigError(
                    f"line {line_cfg.id}: a replay:// scanner plays its scans on an emulated belt: set io_board: sim://"
                )
            options = replay_source(line_cfg.scanner)[1]
            io_options = urlsplit(line_cfg.io_board)
            if "io" in parse_qs(io_options.query):
                options = dataclasses.replace(options, io=parse_qs(io_options.query)["io"][-1])
            belt = self._belts.get(line_cfg.id) or replay_belt(line_cfg, line_cfg.scanner, codes)
            site = EmulatedSite(line_cfg, options, codes, with_plc=gate_parts.scheme == "plc-sim", belt=belt).start()
        elif urlsplit(line_cfg.io_board).scheme == "sim":
            raise ConfigError(
                f"line {line_cfg.id}: io_board sim:// needs a sim:// or replay:// scanner (one emulated belt)"
            )
        return site

    def _start_line(
        self, line_cfg: LineConfig, shared: SharedStages, site: EmulatedSite | None, imaging: ImagingStage
    ) -> LineHandles:
        handles = LineHandles(line=None, site=site)  # type: ignore[arg-type]
        try:
            source = self._open_source(line_cfg, site)
            handles.closers.append(source)
            io_board = self._open_io(line_cfg, site)
            handles.closers.append(io_board)
            gate = self._open_gate(line_cfg, site, io_board, handles)
        except Exception:
            for c in reversed(handles.closers):
                c.close()  # type: ignore[attr-defined]
            if site is not None:
                site.stop()
            raise
        geometry = line_cfg.geometry
        settings = LineSettings(
            line_id=line_cfg.id,
            centre_id=self.config.centre.id,
            channel_pitch_mm=geometry.channel_pitch_mm,
            line_pitch_mm=geometry.line_pitch_mm,
            encoder_counts_per_mm=1.0 / line_cfg.encoder_mm_per_count,
            eye_to_scan_mm=line_cfg.eye_to_scan_mm,
            barcode_to_eye_mm=line_cfg.barcode_to_scanner_mm,
            barcode_window_mm=line_cfg.barcode_window_mm,
            timing=GateTiming(
                scanner_to_gate_mm=line_cfg.eye_to_scan_mm + line_cfg.scanner_to_gate_mm,
                belt_speed_mm_s=line_cfg.belt_speed_mm_s,
                actuator_margin_ms=line_cfg.actuator_margin_ms,
                guard_ms=line_cfg.gate_guard_ms,
            ),
            review_routing=self.config.policy.review_routing,
            queue_size=self.config.runtime.queue_size,
            detect_margin_ms=self.config.runtime.detect_margin_ms,
            ack_timeout_ms=line_cfg.gate_ack_timeout_ms,
        )
        extra_closers = [c for c in handles.closers[2:]]

        def close_extras() -> None:
            for c in reversed(extra_closers):
                c.stop() if hasattr(c, "stop") else c.close()  # type: ignore[attr-defined]

        handles.line = ScreeningLine(
            settings,
            source=source,
            io_board=io_board,  # type: ignore[arg-type]
            gate=gate,
            shared=shared,
            imaging=imaging,
            first_gate_sequence=_start_sequence(),
            on_close=close_extras,
        ).start()
        start_acquisition = getattr(source, "start_acquisition", None)
        if callable(start_acquisition):  # the line's threads are running: now let the scanner stream
            start_acquisition()
        if site is not None:
            logger.info("line %s: emulated scanner at %s, I/O board at %s", line_cfg.id, site.scanner_url, site.io_url)
        return handles

    def _open_source(self, line_cfg: LineConfig, site: EmulatedSite | None) -> LineSource:
        from firmware_bridge.gige_client import GigeError
        from firmware_bridge.gige_receiver import GigeLineSource

        url = site.scanner_url if site is not None else line_cfg.scanner
        # after a crash the scanner keeps the old controller's privilege until its heartbeat
        # timeout (3 s on most devices): retry for a while before giving up
        end = time.monotonic() + self.config.runtime.connect_timeout_s
        while True:
            try:
                return GigeLineSource(url, start=False)
            except GigeError as e:
                if time.monotonic() >= end:
                    raise
                logger.warning("line %s: scanner %s not available yet (%s); retrying", line_cfg.id, url, e)
                time.sleep(0.5)

    def _open_io(self, line_cfg: LineConfig, site: EmulatedSite | None) -> object:
        from firmware_bridge.iolink import IoBoardLink

        if site is not None:
            return IoBoardLink(site.io_url)
        url = line_cfg.io_board
        if url.startswith("pty://"):
            url = url[len("pty://") :]
        return IoBoardLink(url)

    def _open_gate(
        self, line_cfg: LineConfig, site: EmulatedSite | None, io_board: object, handles: LineHandles
    ) -> GateActuator:
        parts = urlsplit(line_cfg.gate)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme == "ioboard":
            return IoBoardGate(io_board)  # type: ignore[arg-type]
        if parts.scheme == "plc-sim":
            if site is None or site.plc is None:
                raise ConfigError(
                    f"line {line_cfg.id}: plc-sim:// gates need a sim:// or replay:// scanner (one emulated belt)"
                )
            if query.get("modbus", "0") in ("1", "true", "yes"):
                server = ModbusPlcServer(site.plc).start()
                handles.closers.append(server)
                return ModbusGate(server.host, server.port, timeout_s=line_cfg.gate_ack_timeout_ms / 1000)
            return PlcSimGate(site.plc)
        if parts.scheme == "modbus":
            if not parts.hostname:
                raise ConfigError(f"line {line_cfg.id}: modbus gate URL needs a host: modbus://host:502?unit=1")
            return ModbusGate(
                parts.hostname,
                parts.port or 502,
                unit=int(query.get("unit", "1")),
                timeout_s=line_cfg.gate_ack_timeout_ms / 1000,
            )
        raise ConfigError(f"line {line_cfg.id}: unsupported gate URL {line_cfg.gate!r}")

    # ---- watchdog and metrics ------------------------------------------------------------------
    def _watch(self) -> None:
        stall_s = self.config.runtime.watchdog_stall_s
        m = self.metrics
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for handles in self.lines.values():
                line = handles.line
                for name, state in line.stages.items():
                    beat = line.gate.heartbeat_s if name == "gate" else state.heartbeat_s
                    stalled = now - beat > stall_s
                    key = f"{line.line_id}/{name}"
                    if stalled and not state.stalled:
                        m.watchdog_trips.labels(key).inc()
                        logger.error("watchdog: stage %s silent for %.1f s", key, now - beat)
                    state.stalled = stalled
                    m.stage_alive.labels(key).set(0 if stalled else 1)
                    m.stage_cpu.labels(key).set(line.gate.cpu_s if name == "gate" else state.cpu_s)
                for link, up in line.links_alive().items():
                    m.link_up.labels(link).set(1 if up else 0)
                for q, depth in line.queue_depths().items():
                    m.queue_depth.labels(q).set(depth)
            if self.batcher is not None:
                m.queue_depth.labels("detector").set(self.batcher.queue_depth)  # type: ignore[attr-defined]
            if self.writer is not None:
                m.queue_depth.labels("journal").set(self.writer.depth)

    def summary(self) -> dict[str, object]:
        """Counts and latencies so far (what ``make demo`` prints)."""
        elapsed = max(time.monotonic() - self._started_at, 1e-9) if self._started_at else 0.0
        outcomes = [o for h in self.lines.values() for o in list(h.line.outcomes)]
        latencies = sorted(x for h in self.lines.values() for x in list(h.line.latencies_ms))
        alarms = sum(1 for o in outcomes if o.decision.route.diverts and not o.decision.fail_closed)
        fail_closed: dict[str, int] = {}
        for o in outcomes:
            if o.decision.fail_closed:
                code = o.decision.reasons[0].code.value
                fail_closed[code] = fail_closed.get(code, 0) + 1
        return {
            "elapsed_s": round(elapsed, 1),
            "parcels": len(outcomes),
            "parcels_per_s": round(len(outcomes) / elapsed, 2) if elapsed else 0.0,
            "cleared": sum(1 for o in outcomes if not o.decision.route.diverts),
            "alarms": alarms,
            "fail_closed": fail_closed,
            "deadline_misses": sum(1 for o in outcomes if o.late),
            "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
            "latency_ms_p99": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
            if latencies
            else None,
            "latency_ms_max": round(latencies[-1], 1) if latencies else None,
        }

    def summary_line(self) -> str:
        s = self.summary()
        return (
            f"{s['elapsed_s']:>6}s  parcels {s['parcels']:>4} ({s['parcels_per_s']}/s)  alarms {s['alarms']}  "
            f"fail-closed {sum(s['fail_closed'].values())}  misses {s['deadline_misses']}  "  # type: ignore[attr-defined]
            f"latency p50 {s['latency_ms_p50']} ms p99 {s['latency_ms_p99']} ms max {s['latency_ms_max']} ms"
        )

    def stage_cpu(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for handles in self.lines.values():
            for name, state in handles.line.stages.items():
                cpu = handles.line.gate.cpu_s if name == "gate" else state.cpu_s
                out[f"{handles.line.line_id}/{name}"] = round(cpu, 3)
        if self.writer is not None:
            out["journal"] = round(self.writer.cpu_s, 3)
        return out

    # ---- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        end = time.monotonic() + self.config.runtime.drain_s
        for handles in self.lines.values():  # all lines stop reading first, then drain together
            if handles.line is not None:
                handles.line.stop_intake()
        for handles in self.lines.values():
            if handles.line is not None:
                handles.line.stop(drain_s=max(end - time.monotonic(), 0.0))
        for handles in self.lines.values():
            if handles.site is not None:
                handles.site.stop()
        if self.batcher is not None:
            self.batcher.stop()  # type: ignore[attr-defined]
        if self.waybills is not None:
            self.waybills.close()
        if self.writer is not None:
            self.writer.stop()
        if self.journal is not None:
            self.journal.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()  # type: ignore[attr-defined]
            self._metrics_server.server_close()  # type: ignore[attr-defined]
        if self._watchdog is not None:
            self._watchdog.join(timeout=2)

    def __enter__(self) -> ScreeningCentre:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def summary_json(centre: ScreeningCentre) -> str:
    return json.dumps(centre.summary(), indent=1)
