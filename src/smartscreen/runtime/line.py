"""One screening line: the stage threads from the scanner and I/O board to the reject gate.

Threads (each device has exactly one owner):

- ``scan-<id>``: owns the :class:`~smartscreen.domain.ports.LineSource`, reads line blocks.
- ``io-<id>``: owns the I/O board link: photo-eye edges (parcel entries: registered with the gate
  stage at once, so every parcel has a fail-closed fallback), barcode reads (waybill prefetch),
  encoder ticks, generator status, gate actuation reports.
- ``assemble-<id>``: owns the :class:`firmware_bridge.assembly.ParcelAssembler`, the calibration
  references and the :class:`~smartscreen.fusion.BarcodeAssociator`.
- ``process-<id>``: calibration and rendering, content-addressed image storage, hand-off to the
  shared detection micro-batcher.
- ``decide-<id>``: waybill fusion and the risk policy; hands the decision to the gate stage.
- ``gate-<id>``: the :class:`~smartscreen.gate.GateController`, owner of the gate actuator.

Queues between stages are bounded. Anything that goes wrong between a parcel's entry and its
gate command ends in a fail-closed REJECT with a reason, recorded in the journal.
"""

from __future__ import annotations

import io
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from firmware_bridge.assembly import AssembledParcel, AssemblerConfig, ParcelAssembler
from firmware_bridge.messages import (
    BarcodeReadMsg,
    BeltStateMsg,
    EncoderTickMsg,
    FaultMsg,
    GateActuatedMsg,
    GeneratorStatusMsg,
    PhotoEyeEdgeMsg,
)
from smartscreen.detection.batcher import DetectionOutcome
from smartscreen.domain.decision import Decision, ReasonCode
from smartscreen.domain.events import ParcelDetected, ParcelEntered, ParcelScanned, WaybillMatched
from smartscreen.domain.ports import GateActuator, LineSource
from smartscreen.domain.render import MaterialClass, RenderedScan
from smartscreen.domain.scan import LineBlock, LineKind, ParcelScan
from smartscreen.domain.waybill import BarcodeMatch, BarcodeRead
from smartscreen.errors import ImagingError
from smartscreen.fusion.association import Association, BarcodeAssociator
from smartscreen.gate.controller import GateController, GateOutcome, GateStatus
from smartscreen.gate.timing import NS_PER_MS, GateTiming
from smartscreen.imaging.calibration import Calibration
from smartscreen.imaging.rawio import raw_meta
from smartscreen.imaging.scanner import ScannerParams
from smartscreen.risk.engine import RiskInputs, evaluate
from smartscreen.runtime.bridge_adapter import TrackedEdge, barcode_reads, parcel_id_for, parcel_scan, photo_eye
from smartscreen.runtime.shared import ImagingStage, SharedStages

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LineSettings:
    line_id: str
    centre_id: str
    channel_pitch_mm: float
    line_pitch_mm: float
    encoder_counts_per_mm: float
    eye_to_scan_mm: float
    barcode_to_eye_mm: float
    barcode_window_mm: float
    timing: GateTiming  # measured from the entry photo-eye
    review_routing: bool = False
    queue_size: int = 64
    detect_margin_ms: float = 80.0  # time kept after detection for fusion, policy, journal and command
    ack_timeout_ms: float = 100.0


class IoBoard(Protocol):
    """What the line needs of the I/O board link (``firmware_bridge.iolink.IoBoardLink``)."""

    def poll_event(self, timeout_s: float) -> object | None: ...

    def link_alive(self) -> bool: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class StageState:
    name: str
    heartbeat_s: float = field(default_factory=time.monotonic)
    cpu_s: float = 0.0
    errors: int = 0
    items: int = 0
    stalled: bool = False


@dataclass(slots=True)
class ParcelWork:
    parcel_id: str
    entered_at_ns: int
    deadline_ns: int
    scan: ParcelScan
    association: Association
    assembled_at_ns: int
    calibration_error: str = ""
    rendered: RenderedScan | None = None
    impenetrable_fraction: float = 0.0
    mass_g: float | None = None
    detect_submitted_ns: int = 0


_AssemblyItem = tuple[str, LineBlock | TrackedEdge | BarcodeRead]


class ScreeningLine:
    """Wires one line's devices to the shared stages; :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        settings: LineSettings,
        *,
        source: LineSource,
        io_board: IoBoard,
        gate: GateActuator,
        shared: SharedStages,
        imaging: ImagingStage,
        first_gate_sequence: int = 1,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.line_id = settings.line_id
        self._source = source
        self._io = io_board
        self._gate_actuator = gate
        self.shared = shared
        self.imaging = imaging
        self._on_close = on_close
        self._stop = threading.Event()
        self._stop_intake = threading.Event()  # scanner and I/O board stop first, the rest drains
        self._threads: list[threading.Thread] = []
        self._intake_threads: list[threading.Thread] = []
        self.stages: dict[str, StageState] = {}
        self._assembly_q: queue.Queue[_AssemblyItem] = queue.Queue(maxsize=settings.queue_size * 64)
        self._process_q: queue.Queue[tuple[ParcelWork, Calibration | None]] = queue.Queue(maxsize=settings.queue_size)
        self._decide_q: queue.Queue[tuple[ParcelWork, DetectionOutcome | None]] = queue.Queue(
            maxsize=settings.queue_size
        )
        self._entries: dict[int, int] = {}  # parcel_seq -> entered_at_ns
        self._assembled_at: dict[str, int] = {}
        self._lock = threading.Lock()
        self.encoder_counts = 0
        self.belt_speed_mm_s = 0.0
        self.interlock_closed = True
        self.dropped_items = 0
        self.gate_actuations: dict[int, tuple[bool, bool]] = {}  # parcel_seq -> (diverted, commanded)
        self.outcomes: list[GateOutcome] = []
        self.latencies_ms: list[float] = []
        self.line_stopped = False
        self._calibration: Calibration | None = None
        self._refs: dict[LineKind, list[LineBlock]] = {LineKind.DARK: [], LineKind.AIR: []}
        self._last_kind: LineKind | None = None
        self.assembler = ParcelAssembler(
            AssemblerConfig(
                encoder_counts_per_mm=settings.encoder_counts_per_mm,
                line_pitch_mm=settings.line_pitch_mm,
                eye_to_scan_mm=settings.eye_to_scan_mm,
            )
        )
        self.associator = BarcodeAssociator(
            barcode_to_scanner_mm=settings.barcode_to_eye_mm,
            window_mm=settings.barcode_window_mm,
            mm_per_count=1.0 / settings.encoder_counts_per_mm,
        )
        self.gate = GateController(
            gate,
            settings.timing,
            line_id=settings.line_id,
            policy_version=shared.policy.version,
            journal=shared.journal.append,
            ack_timeout_ms=settings.ack_timeout_ms,
            on_outcome=self._on_outcome,
            first_sequence=first_gate_sequence,
        )

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> ScreeningLine:
        self.gate.start()
        self.stages["gate"] = StageState("gate")
        for name, body in (
            ("io", self._io_step),
            ("scan", self._scan_step),
            ("assemble", self._assemble_step),
            ("process", self._process_step),
            ("decide", self._decide_step),
        ):
            state = StageState(name)
            self.stages[name] = state
            intake = name in ("io", "scan")
            thread = threading.Thread(
                target=self._stage_loop,
                args=(state, body, self._stop_intake if intake else self._stop),
                name=f"{name}-{self.line_id}",
                daemon=True,
            )
            (self._intake_threads if intake else self._threads).append(thread)
            thread.start()
        return self

    def stop_intake(self) -> None:
        """Stop reading the scanner and the I/O board; parcels already in the line still get decided."""
        self._stop_intake.set()
        for thread in self._intake_threads:
            thread.join(timeout=5)

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop intake, let the stages and the gate finish what is pending (up to ``drain_s``), close devices."""
        self.stop_intake()
        end = time.monotonic() + drain_s
        while time.monotonic() < end and self.gate.pending:
            time.sleep(0.02)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.gate.stop(drain_s=max(end - time.monotonic(), 0.0))
        for closer in (self._source.close, self._io.close, self._gate_actuator.close):
            try:
                closer()
            except Exception:  # closing must go on for the other devices
                logger.exception("line %s: closing a device failed", self.line_id)
        if self._on_close is not None:
            self._on_close()

    def _stage_loop(self, state: StageState, body: Callable[[], None], stop: threading.Event) -> None:
        cpu0 = time.thread_time()
        recent_errors: list[float] = []
        while not stop.is_set():
            state.heartbeat_s = time.monotonic()
            try:
                body()
            except Exception:  # a stage survives bad input; parcels it held fall back at the gate stage
                state.errors += 1
                now = time.monotonic()
                recent_errors = [t for t in recent_errors if now - t < 60.0] + [now]
                logger.exception("line %s: stage %s failed", self.line_id, state.name)
                if len(recent_errors) >= 20 and not self.line_stopped:
                    self.line_stopped = True
                    self.shared.metrics.line_stop.labels(self.line_id).set(1)
                    logger.critical("line %s: stage %s keeps failing: LINE STOP requested", self.line_id, state.name)
                time.sleep(0.01)
            state.cpu_s = time.thread_time() - cpu0

    def _put(self, q: queue.Queue[object], item: object, what: str) -> bool:
        try:
            q.put(item, timeout=0.5)
            return True
        except queue.Full:
            self.dropped_items += 1
            logger.error("line %s: %s queue full, dropping %s", self.line_id, what, type(item).__name__)
            return False

    # ---- scanner -------------------------------------------------------------------------------
    def _scan_step(self) -> None:
        block = self._source.read_block(0.1)
        if block is not None:
            self._put(self._assembly_q, ("block", block), "assembly")  # type: ignore[arg-type]

    # ---- I/O board -----------------------------------------------------------------------------
    def _io_step(self) -> None:
        msg = self._io.poll_event(0.1)
        if msg is None:
            return
        if isinstance(msg, PhotoEyeEdgeMsg):
            tracked = photo_eye(msg)
            if msg.blocked:
                self._parcel_entered(msg)
            self._put(self._assembly_q, ("edge", tracked), "assembly")  # type: ignore[arg-type]
        elif isinstance(msg, BarcodeReadMsg):
            for read in barcode_reads(msg):
                self.shared.waybills.prefetch(read.code)
                self._put(self._assembly_q, ("read", read), "assembly")  # type: ignore[arg-type]
        elif isinstance(msg, EncoderTickMsg):
            self.encoder_counts = msg.encoder_counts
        elif isinstance(msg, BeltStateMsg):
            self.belt_speed_mm_s = msg.speed_mm_s if msg.running else 0.0
        elif isinstance(msg, GateActuatedMsg):
            self.gate_actuations[msg.parcel_seq] = (msg.divert, msg.commanded)
        elif isinstance(msg, GeneratorStatusMsg):
            if self.interlock_closed and not msg.interlock_closed:
                logger.warning("line %s: X-ray interlock open", self.line_id)
            self.interlock_closed = msg.interlock_closed
        elif isinstance(msg, FaultMsg):
            logger.warning("line %s: I/O board fault %d: %s", self.line_id, msg.code, msg.text)

    def _parcel_entered(self, msg: PhotoEyeEdgeMsg) -> None:
        parcel_id = parcel_id_for(self.line_id, msg.parcel_seq)
        with self._lock:
            self._entries[msg.parcel_seq] = msg.at_ns
            if len(self._entries) > 4096:
                for key in list(self._entries)[:1024]:
                    del self._entries[key]
        self.gate.expect(parcel_id, msg.at_ns)  # from now on the parcel cannot leave without a command
        # queued, not awaited: the I/O board is read without ever waiting for a disk; the gate's
        # write-ahead commit of this parcel's command makes this entry durable first (FIFO)
        self.shared.journal.post(
            [
                ParcelEntered(
                    parcel_id=parcel_id,
                    centre_id=self.settings.centre_id,
                    line_id=self.line_id,
                    at_ns=msg.at_ns,
                    encoder_counts=msg.encoder_counts,
                    belt_position_mm=msg.encoder_counts / self.settings.encoder_counts_per_mm,
                )
            ]
        )

    # ---- assembly ------------------------------------------------------------------------------
    def _assemble_step(self) -> None:
        try:
            kind, item = self._assembly_q.get(timeout=0.1)
        except queue.Empty:
            return
        parcels: list[AssembledParcel] = []
        if kind == "block":
            assert isinstance(item, LineBlock)
            if item.kind is not LineKind.SCAN:
                self._reference(item)
            else:
                parcels = self.assembler.feed_block(item)
        elif kind == "edge":
            assert isinstance(item, TrackedEdge)
            parcels = self.assembler.feed_edge(
                item.edge.blocked, item.edge.encoder_counts, item.edge.at_ns, item.parcel_seq
            )
        else:
            assert isinstance(item, BarcodeRead)
            self.associator.add_read(item)
        for parcel in parcels:
            self._assembled(parcel)

    def _reference(self, block: LineBlock) -> None:
        if block.kind != self._last_kind:
            self._refs[block.kind] = []
        self._last_kind = block.kind
        self._refs[block.kind].append(block)
        dark, air = self._refs[LineKind.DARK], self._refs[LineKind.AIR]
        if dark and air and block.kind is LineKind.AIR:
            try:
                self._calibration = Calibration.from_reference_lines(
                    np.concatenate([b.high for b in dark]),
                    np.concatenate([b.low for b in dark]),
                    np.concatenate([b.high for b in air]),
                    np.concatenate([b.low for b in air]),
                )
            except (ImagingError, ValueError) as e:  # bad references: parcels fail closed until good ones arrive
                self._calibration = None
                logger.error("line %s: calibration references rejected: %s", self.line_id, e)

    def _assembled(self, parcel: AssembledParcel) -> None:
        now = time.time_ns()
        scan = parcel_scan(parcel, line_id=self.line_id, channel_pitch_mm=self.settings.channel_pitch_mm)
        association = self.associator.associate(scan.parcel_id, parcel.entry_encoder_counts, scan.length_mm)
        entered = parcel.entered_at_ns
        deadline = self.gate.expect(scan.parcel_id, entered)
        work = ParcelWork(scan.parcel_id, entered, deadline, scan, association, now)
        work.calibration_error = "" if self._calibration is not None else "no calibration references from the scanner"
        with self._lock:
            self._assembled_at[scan.parcel_id] = now
        self._put(self._process_q, (work, self._calibration), "process")  # type: ignore[arg-type]

    # ---- calibration, rendering, storage, detection ----------------------------------------------
    def _process_step(self) -> None:
        try:
            work, calibration = self._process_q.get(timeout=0.1)
        except queue.Empty:
            return
        scan = work.scan
        if calibration is not None:
            try:
                work.rendered = self.imaging.render(scan.high, scan.low, calibration)
            except (ImagingError, ValueError) as e:  # unrenderable scan: fail closed with the reason
                work.calibration_error = f"imaging failed: {type(e).__name__}: {e}"[:200]
                logger.warning("line %s: %s: %s", self.line_id, work.parcel_id, work.calibration_error)
        if work.rendered is not None:
            work.impenetrable_fraction = _impenetrable_fraction(work.rendered)
            work.mass_g = self.imaging.mass_g(work.rendered, scan)
            self._submit_detection(work)  # detection runs while the images are stored
        raw_sha = self.shared.images.put(_raw_npz(scan, calibration, self.imaging.params))
        render_sha = self.shared.images.put(_png(work.rendered.rgb)) if work.rendered is not None else ""
        self.shared.journal.post(
            [
                ParcelScanned(
                    parcel_id=work.parcel_id,
                    line_id=self.line_id,
                    at_ns=time.time_ns(),
                    shape_hw=scan.shape_hw,
                    complete=scan.complete,
                    n_missing_lines=scan.n_missing_lines,
                    truncated=scan.truncated,
                    raw_sha256=raw_sha,
                    render_sha256=render_sha,
                )
            ]
        )
        if work.rendered is None:
            self._put(self._decide_q, (work, None), "decide")  # type: ignore[arg-type]

    def _submit_detection(self, work: ParcelWork) -> None:
        assert work.rendered is not None
        detect_by_ns = work.deadline_ns - round(
            (self.settings.timing.guard_ms + self.settings.detect_margin_ms) * NS_PER_MS
        )
        mono_deadline = detect_by_ns - time.time_ns() + time.monotonic_ns()
        work.detect_submitted_ns = time.time_ns()
        future = self.shared.batcher.submit(work.rendered, mono_deadline, tag=work.parcel_id)

        def done(f: Future[DetectionOutcome]) -> None:
            try:
                self._decide_q.put_nowait((work, f.result()))
            except queue.Full:
                self.dropped_items += 1
                logger.error("line %s: decide queue full; %s falls back to REJECT", self.line_id, work.parcel_id)

        future.add_done_callback(done)

    # ---- fusion and policy -----------------------------------------------------------------------
    def _decide_step(self) -> None:
        try:
            work, outcome = self._decide_q.get(timeout=0.1)
        except queue.Empty:
            return
        try:
            self._decide(work, outcome)
        except Exception as e:  # never leave a parcel without a decision: fail closed now
            logger.exception("line %s: deciding %s failed", self.line_id, work.parcel_id)
            decision = Decision.fail_closed_reject(
                work.parcel_id,
                ReasonCode.INTERNAL_ERROR,
                f"decision stage error: {type(e).__name__}",
                self.shared.policy.version,
                time.time_ns(),
            )
            self.gate.submit(decision, work.entered_at_ns)

    def _decide(self, work: ParcelWork, outcome: DetectionOutcome | None) -> None:
        detections = None
        detector_error = work.calibration_error
        inference_ms = 0.0
        if outcome is not None:
            if outcome.ok:
                detections = outcome.detections
                inference_ms = (outcome.finished_ns - outcome.started_ns) / NS_PER_MS
            else:
                failure = outcome.failure.value if outcome.failure is not None else "no result"
                detector_error = f"{failure}: {outcome.message}"[:200]
        assoc = work.association
        waybill, waybill_error = None, ""
        if assoc.outcome is BarcodeMatch.MATCHED:
            budget_s = (work.deadline_ns - time.time_ns()) / 1e9 - (self.settings.timing.guard_ms + 20.0) / 1000.0
            waybill, waybill_error = self.shared.waybills.get(assoc.tracking_no, min(max(budget_s, 0.0), 0.5))
        scan = work.scan
        detail = ""
        if not scan.complete:
            detail = f"{scan.n_missing_lines} missing lines" + (", truncated" if scan.truncated else "")
        inputs = RiskInputs(
            parcel_id=work.parcel_id,
            detections=detections,
            barcode=assoc.outcome,
            detector_error=detector_error if detections is None else "",
            tracking_no=assoc.tracking_no,
            waybill=waybill,
            waybill_error=waybill_error,
            scan_complete=scan.complete,
            scan_detail=detail,
            xray_mass_g=work.mass_g,
            impenetrable_fraction=work.impenetrable_fraction,
        )
        now = time.time_ns()
        assessment, decision = evaluate(
            inputs, self.shared.policy, review_routing=self.settings.review_routing, at_ns=now
        )
        facts = (
            WaybillMatched(
                parcel_id=work.parcel_id,
                at_ns=now,
                outcome=assoc.outcome,
                tracking_no=assoc.tracking_no,
                found=waybill is not None,
                waybill=waybill,
            ),
            ParcelDetected(
                parcel_id=work.parcel_id,
                at_ns=now,
                detections=detections,
                error="" if detections is not None else (detector_error or "no detector result"),
                inference_ms=inference_ms,
            ),
        )
        self.gate.submit(decision, work.entered_at_ns, assessment, events=facts)

    # ---- gate outcomes ---------------------------------------------------------------------------
    def _on_outcome(self, outcome: GateOutcome) -> None:
        m = self.shared.metrics
        decision = outcome.decision
        m.parcels.labels(self.line_id, decision.route.value).inc()
        m.gate_status.labels(self.line_id, outcome.status.value).inc()
        if decision.fail_closed:
            m.fail_closed.labels(self.line_id, decision.reasons[0].code.value).inc()
        elif decision.route.diverts:
            m.alarms.labels(self.line_id).inc()
        if outcome.late:
            m.deadline_misses.labels(self.line_id).inc()
        with self._lock:
            assembled = self._assembled_at.pop(outcome.parcel_id, None)
            self.outcomes.append(outcome)
            if len(self.outcomes) > 100_000:
                del self.outcomes[:50_000]
        if assembled is not None and outcome.status is not GateStatus.LINK_DOWN:
            latency_ms = (outcome.commanded_at_ns - assembled) / NS_PER_MS
            self.latencies_ms.append(latency_ms)
            if len(self.latencies_ms) > 200_000:
                del self.latencies_ms[:100_000]
            m.decision_latency.labels(self.line_id).observe(latency_ms / 1000.0)

    def links_alive(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for name, check in (
            (f"{self.line_id}/io_board", self._io.link_alive),
            (f"{self.line_id}/gate", self._gate_actuator.link_alive),
        ):
            try:
                out[name] = bool(check())
            except Exception:  # a link that cannot even report is down
                logger.exception("line %s: link check failed", self.line_id)
                out[name] = False
        return out

    def queue_depths(self) -> dict[str, int]:
        return {
            f"{self.line_id}/assembly": self._assembly_q.qsize(),
            f"{self.line_id}/process": self._process_q.qsize(),
            f"{self.line_id}/decide": self._decide_q.qsize(),
            f"{self.line_id}/gate": self.gate.pending,
        }


def _raw_npz(scan: ParcelScan, calibration: Calibration | None, params: ScannerParams) -> bytes:
    """The raw scan in the project's raw format (``smartscreen.imaging.rawio``, ``datasets/RAW_FORMAT.md``).

    Uncompressed (the line's CPU goes to deciding parcels); the review service renders it with
    the same calibration the line used.
    """
    arrays: dict[str, npt.NDArray[np.generic]] = {"high": scan.high, "low": scan.low}
    if calibration is not None:
        for name in ("dark_high", "dark_low", "air_high", "air_low"):
            arrays[name] = np.asarray(getattr(calibration, name), dtype=np.float32)
        arrays["bad_high"] = calibration.bad_high.astype(np.uint8)
        arrays["bad_low"] = calibration.bad_low.astype(np.uint8)
    meta = raw_meta(
        params,
        parcel_id=scan.parcel_id,
        line_id=scan.line_id,
        first_line_index=scan.first_line_index,
        missing_lines=[[r.start, r.stop] for r in scan.missing_lines],
        truncated=scan.truncated,
    )
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _png(rgb: npt.NDArray[np.uint8]) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return bytes(data.tobytes())


def _impenetrable_fraction(rendered: RenderedScan) -> float:
    material = rendered.material
    parcel = material != MaterialClass.BACKGROUND
    n = int(parcel.sum())
    if n == 0:
        return 0.0
    return float((material == MaterialClass.IMPENETRABLE).sum()) / n
