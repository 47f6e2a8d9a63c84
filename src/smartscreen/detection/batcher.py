"""Deadline-aware micro-batching of scans from several lines onto one detector.

``MicroBatcher.submit(scan, deadline_ns)`` returns a :class:`concurrent.futures.Future`
that always resolves to a :class:`DetectionOutcome`, never raises: either detections,
or an explicit failure (queue full, deadline missed, inference timeout or error,
stopped) so the decision stage can fail closed.

Scheduling (the pure :class:`BatchPlanner`, driven by one dispatcher thread):

- pending scans are ordered by deadline (earliest first); a batch takes the earliest;
- a batch is sent as soon as it is full, the oldest scan has waited ``max_wait_ms``, or
  waiting for one more scan would make the earliest deadline unreachable according to
  the latency estimate (:class:`LatencyModel`, learnt from measured batches);
- the batch is cut to the largest size whose estimated latency still meets the earliest
  deadline in it;
- a scan that cannot be finished before its deadline even alone is answered at once
  with ``DEADLINE_MISSED``, never silently late;
- while a batch runs, each of its scans is answered with ``DEADLINE_MISSED`` when its
  deadline passes, and all of them with ``TIMEOUT`` after ``timeout_ms``; a stalled
  detector therefore never holds a scan past its deadline;
- the queue is bounded: a full queue answers ``QUEUE_FULL`` immediately (backpressure).

Times come from an injectable :class:`smartscreen.domain.ports.Clock`
(``monotonic_ns`` timeline); deadlines are on that timeline.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from enum import StrEnum

from smartscreen.config import DetectorConfig
from smartscreen.domain.detections import Detections
from smartscreen.domain.ports import Clock, Detector
from smartscreen.domain.render import RenderedScan

logger = logging.getLogger(__name__)

_MS = 1_000_000


class SystemClock:
    """The real clock."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def time_ns(self) -> int:
        return time.time_ns()


class DetectionFailure(StrEnum):
    QUEUE_FULL = "queue_full"  # refused at submit: the detector is behind (backpressure)
    DEADLINE_MISSED = "deadline_missed"  # could not be (or was not) finished before its deadline
    TIMEOUT = "inference_timeout"  # its batch ran longer than timeout_ms (stalled detector)
    INFERENCE_ERROR = "inference_error"  # the detector raised or returned a malformed result
    STOPPED = "stopped"  # the batcher stopped before the scan ran


@dataclass(frozen=True, slots=True)
class DetectionOutcome:
    """The answer for one submitted scan: detections or an explicit failure.

    Times are on the batcher clock's monotonic timeline (ns); ``started_ns`` and
    ``finished_ns`` are 0 for scans that never reached the detector.
    """

    tag: object
    detections: Detections | None
    failure: DetectionFailure | None
    message: str
    submitted_ns: int
    deadline_ns: int
    started_ns: int = 0
    finished_ns: int = 0
    batch_size: int = 0

    @property
    def ok(self) -> bool:
        return self.failure is None and self.detections is not None

    @property
    def queue_wait_ns(self) -> int:
        return (self.started_ns - self.submitted_ns) if self.started_ns else 0


class LatencyModel:
    """Estimated wall time of a batch of ``n``: the median of the recent measurements per batch size.

    The median of the last ``window`` batches of a size, not a running mean: one stalled
    inference (a page fault storm, another process on the CPU) does not move it, a lasting
    change in speed does once it makes up half the window. Measurements older than
    ``max_age_s`` are forgotten, and a size without recent ones falls back to the start
    value (the warm-up latency): an estimate that a slow spell drove so high that every
    scan was answered ``DEADLINE_MISSED`` without running (so nothing new was measured)
    recovers by itself instead of failing the line closed for good.

    Sizes never measured are scaled linearly from the nearest measured size (inference
    cost on CPU grows linearly with the batch). ``estimate_ns`` includes a safety factor
    and a fixed margin for dispatch jitter; ``raw_ns`` does not.
    """

    def __init__(
        self,
        initial_ms: float,
        *,
        window: int = 9,
        max_age_s: float = 30.0,
        safety_factor: float = 1.25,
        margin_ms: float = 2.0,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if initial_ms <= 0:
            raise ValueError(f"initial latency must be > 0 ms, got {initial_ms}")
        if window < 1 or max_age_s <= 0:
            raise ValueError(f"window must be >= 1 and max_age_s > 0, got {window}, {max_age_s}")
        self._initial_ns = initial_ms * _MS
        self._window = window
        self._max_age_ns = int(max_age_s * 1e9)
        self._samples: dict[int, deque[tuple[int, int]]] = {}  # size -> (measured at, elapsed ns)
        self._safety = safety_factor
        self._margin_ns = margin_ms * _MS
        self._clock_ns = clock_ns
        self._lock = threading.Lock()

    def observe(self, n: int, elapsed_ns: int) -> None:
        with self._lock:
            self._samples.setdefault(n, deque(maxlen=self._window)).append((self._clock_ns(), elapsed_ns))

    def _medians(self) -> dict[int, float]:
        oldest = self._clock_ns() - self._max_age_ns
        medians: dict[int, float] = {}
        for size, samples in self._samples.items():
            while samples and samples[0][0] < oldest:
                samples.popleft()
            if samples:
                medians[size] = float(statistics.median(e for _, e in samples))
        return medians

    def raw_ns(self, n: int) -> float:
        with self._lock:
            medians = self._medians()
        if n in medians:
            return medians[n]
        if not medians:
            return self._initial_ns * n
        k = min(medians, key=lambda size: (abs(size - n), -size))
        return medians[k] * n / k

    def estimate_ns(self, n: int) -> int:
        return int(self.raw_ns(n) * self._safety + self._margin_ns)


@dataclass(slots=True)
class _Request:
    seq: int
    scan: RenderedScan
    deadline_ns: int
    submitted_ns: int
    tag: object
    future: Future[DetectionOutcome] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Plan:
    """What the dispatcher should do now."""

    expired: list[_Request]
    batch: list[_Request]
    wake_at_ns: int | None  # when to re-plan at the latest (None: only on the next event)


class BatchPlanner:
    """Pure scheduling state: pending requests ordered by deadline. Not thread-safe (the batcher locks it)."""

    def __init__(self, max_batch: int, max_wait_ns: int, latency: LatencyModel) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        self.max_wait_ns = max_wait_ns
        self.latency = latency
        self._heap: list[tuple[int, int, _Request]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, request: _Request) -> None:
        heapq.heappush(self._heap, (request.deadline_ns, request.seq, request))

    def drain(self) -> list[_Request]:
        out = [r for _, _, r in sorted(self._heap)]
        self._heap.clear()
        return out

    def plan(self, now_ns: int, executor_free: bool) -> Plan:
        expired: list[_Request] = []
        alone_ns = self.latency.raw_ns(1)
        while self._heap and now_ns + alone_ns > self._heap[0][0]:
            expired.append(heapq.heappop(self._heap)[2])
        if not self._heap:
            return Plan(expired, [], None)
        earliest = self._heap[0][0]
        expire_at = int(earliest - alone_ns)
        if not executor_free:
            return Plan(expired, [], expire_at)
        n = min(len(self._heap), self.max_batch)
        oldest_ns = min(r.submitted_ns for _, _, r in self._heap)
        fill_by = oldest_ns + self.max_wait_ns
        risk_at = earliest - self.latency.estimate_ns(min(n + 1, self.max_batch))
        if n < self.max_batch and now_ns < fill_by and now_ns < risk_at:
            return Plan(expired, [], min(fill_by, risk_at))
        k = n
        while k > 1 and now_ns + self.latency.estimate_ns(k) > earliest:
            k -= 1
        batch = [heapq.heappop(self._heap)[2] for _ in range(k)]
        next_wake = int(self._heap[0][0] - alone_ns) if self._heap else None
        return Plan(expired, batch, next_wake)


@dataclass(frozen=True, slots=True)
class BatcherStats:
    submitted: int
    completed: int
    failed: dict[str, int]
    batches: int
    mean_batch_size: float
    queue_depth: int
    in_flight: int
    late_results_discarded: int
    estimated_batch1_ms: float


@dataclass(slots=True)
class _InFlight:
    requests: list[_Request]
    started_ns: int
    done: threading.Event = field(default_factory=threading.Event)


class MicroBatcher:
    """Gathers scans from several lines into deadline-aware batches for one :class:`Detector`."""

    def __init__(
        self,
        detector: Detector,
        *,
        max_batch: int = 8,
        max_wait_ms: float = 15.0,
        max_queue: int = 64,
        timeout_ms: float = 1500.0,
        initial_latency_ms: float | None = None,
        clock: Clock | None = None,
        poll_interval_s: float = 0.05,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        if timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be > 0, got {timeout_ms}")
        self.detector = detector
        self.clock: Clock = clock or SystemClock()
        if initial_latency_ms is None:
            warm = getattr(detector, "warmup_ms", None)
            initial_latency_ms = float(warm) if isinstance(warm, int | float) and warm > 0 else 50.0
        self.latency = LatencyModel(initial_latency_ms, clock_ns=self.clock.monotonic_ns)
        self._planner = BatchPlanner(max_batch, int(max_wait_ms * _MS), self.latency)
        self.max_queue = max_queue
        self.timeout_ns = int(timeout_ms * _MS)
        self._poll_s = poll_interval_s
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._in_flight: _InFlight | None = None
        self._work: _InFlight | None = None
        self._running = False
        self._dispatcher: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._submitted = 0
        self._completed = 0
        self._failed: dict[str, int] = {f.value: 0 for f in DetectionFailure}
        self._batches = 0
        self._batched_scans = 0
        self._late_discarded = 0

    @classmethod
    def from_config(cls, detector: Detector, config: DetectorConfig, clock: Clock | None = None) -> MicroBatcher:
        """A batcher with the line configuration's ``detector:`` limits (max_batch, max_wait_ms, timeout_ms)."""
        return cls(
            detector,
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            timeout_ms=config.timeout_ms,
            max_queue=max(4 * config.max_batch, 16),
            clock=clock,
        )

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> MicroBatcher:
        with self._cond:
            if self._running:
                return self
            self._running = True
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="detect-dispatch", daemon=True)
        self._worker = threading.Thread(target=self._work_loop, name="detect-infer", daemon=True)
        self._dispatcher.start()
        self._worker.start()
        return self

    def stop(self, join_timeout_s: float = 5.0) -> None:
        """Stop; pending scans are answered ``STOPPED``. A running batch is left to finish or time out."""
        with self._cond:
            if not self._running:
                return
            self._running = False
            pending = self._planner.drain()
            self._cond.notify_all()
        for r in pending:
            self._fail(r, DetectionFailure.STOPPED, "the detector batcher stopped before this scan ran")
        for thread in (self._dispatcher, self._worker):
            if thread is not None:
                thread.join(join_timeout_s)

    def __enter__(self) -> MicroBatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wake(self) -> None:
        """Re-plan now (tests call this after advancing a fake clock)."""
        with self._cond:
            self._cond.notify_all()

    # ----------------------------------------------------------------- API

    def submit(self, scan: RenderedScan, deadline_ns: int, tag: object = None) -> Future[DetectionOutcome]:
        """Queue one scan; the future resolves to a :class:`DetectionOutcome` by ``deadline_ns`` at the latest."""
        now = self.clock.monotonic_ns()
        future: Future[DetectionOutcome] = Future()
        request = _Request(next(self._seq), scan, deadline_ns, now, tag, future)
        with self._cond:
            self._submitted += 1
            if not self._running:
                refuse: DetectionFailure | None = DetectionFailure.STOPPED
                message = "the detector batcher is not running"
            elif len(self._planner) >= self.max_queue:
                refuse = DetectionFailure.QUEUE_FULL
                message = f"detector queue full ({self.max_queue} scans waiting): the detector is behind"
            else:
                refuse = None
                message = ""
                self._planner.push(request)
                self._cond.notify_all()
        if refuse is not None:
            self._fail(request, refuse, message)
        return future

    @property
    def queue_depth(self) -> int:
        with self._cond:
            return len(self._planner)

    def stats(self) -> BatcherStats:
        with self._cond:
            return BatcherStats(
                submitted=self._submitted,
                completed=self._completed,
                failed=dict(self._failed),
                batches=self._batches,
                mean_batch_size=self._batched_scans / self._batches if self._batches else 0.0,
                queue_depth=len(self._planner),
                in_flight=len(self._in_flight.requests) if self._in_flight else 0,
                late_results_discarded=self._late_discarded,
                estimated_batch1_ms=self.latency.raw_ns(1) / _MS,
            )

    # ----------------------------------------------------------------- threads

    def _dispatch_loop(self) -> None:
        while True:
            expired: list[_Request] = []
            overdue: list[tuple[_Request, DetectionFailure, str]] = []
            with self._cond:
                if not self._running:
                    return
                now = self.clock.monotonic_ns()
                wake_at: int | None = None
                flight = self._in_flight
                if flight is not None:
                    if flight.done.is_set():
                        self._in_flight = flight = None
                    else:
                        overdue, wake_at = self._overdue(flight, now)
                plan = self._planner.plan(now, executor_free=flight is None)
                expired = plan.expired
                if plan.batch:
                    flight = _InFlight(plan.batch, now)
                    self._in_flight = self._work = flight
                    self._batches += 1
                    self._batched_scans += len(plan.batch)
                    self._cond.notify_all()
                    overdue_wake = flight.started_ns + self.timeout_ns
                    wake_at = overdue_wake if wake_at is None else min(wake_at, overdue_wake)
                if plan.wake_at_ns is not None:
                    wake_at = plan.wake_at_ns if wake_at is None else min(wake_at, plan.wake_at_ns)
            for r in expired:
                self._fail(r, DetectionFailure.DEADLINE_MISSED, self._expired_message(r, now))
            for r, failure, message in overdue:
                self._fail(r, failure, message)
            if plan.batch or expired or overdue:
                continue  # re-plan at once
            with self._cond:
                if not self._running:
                    return
                delay_s = self._poll_s if wake_at is None else max(0.0, (wake_at - now) / 1e9)
                self._cond.wait(min(delay_s, self._poll_s))

    def _overdue(self, flight: _InFlight, now: int) -> tuple[list[tuple[_Request, DetectionFailure, str]], int | None]:
        out: list[tuple[_Request, DetectionFailure, str]] = []
        elapsed_ms = (now - flight.started_ns) / _MS
        timed_out = now - flight.started_ns >= self.timeout_ns
        wake_at: int | None = None
        for r in flight.requests:
            if r.future.done():
                continue
            if timed_out:
                out.append((r, DetectionFailure.TIMEOUT, f"inference stalled: its batch ran {elapsed_ms:.0f} ms"))
            elif now >= r.deadline_ns:
                out.append(
                    (
                        r,
                        DetectionFailure.DEADLINE_MISSED,
                        f"inference still running at the deadline ({elapsed_ms:.0f} ms)",
                    )
                )
            else:
                wake_at = r.deadline_ns if wake_at is None else min(wake_at, r.deadline_ns)
        return out, wake_at

    def _expired_message(self, r: _Request, now: int) -> str:
        left_ms = (r.deadline_ns - now) / _MS
        busy = " (the detector is busy with an earlier batch)" if self._in_flight is not None else ""
        return (
            f"cannot finish before the deadline: {left_ms:.1f} ms left, one scan takes about "
            f"{self.latency.raw_ns(1) / _MS:.1f} ms{busy}"
        )

    def _work_loop(self) -> None:
        while True:
            with self._cond:
                while self._work is None and self._running:
                    self._cond.wait(self._poll_s)
                if self._work is None:
                    return
                flight = self._work
                self._work = None
            self._run(flight)
            flight.done.set()
            with self._cond:
                self._cond.notify_all()

    def _run(self, flight: _InFlight) -> None:
        requests = flight.requests
        start_ns = self.clock.monotonic_ns()
        try:
            results: Sequence[Detections] | None = self.detector.detect([r.scan for r in requests])
            error = ""
            if results is None or len(results) != len(requests):
                error = (
                    f"the detector returned {0 if results is None else len(results)} results for {len(requests)} scans"
                )
                results = None
        except Exception as e:  # any detector failure becomes an explicit error result, counted and logged
            logger.exception("detector failed on a batch of %d", len(requests))
            results, error = None, f"{type(e).__name__}: {e}"
        end_ns = self.clock.monotonic_ns()
        if results is not None and not any(r.future.done() for r in requests):
            # a batch that overran its deadline or timeout is an outlier (stall), not the model's speed
            self.latency.observe(len(requests), end_ns - start_ns)
        for k, r in enumerate(requests):
            if results is None:
                outcome = self._outcome(
                    r, None, DetectionFailure.INFERENCE_ERROR, error, start_ns, end_ns, len(requests)
                )
            else:
                outcome = self._outcome(r, results[k], None, "", start_ns, end_ns, len(requests))
            if not self._resolve(r, outcome):
                with self._cond:
                    self._late_discarded += 1

    # ----------------------------------------------------------------- resolution

    @staticmethod
    def _outcome(
        r: _Request,
        detections: Detections | None,
        failure: DetectionFailure | None,
        message: str,
        started_ns: int,
        finished_ns: int,
        batch_size: int,
    ) -> DetectionOutcome:
        return DetectionOutcome(
            tag=r.tag,
            detections=detections,
            failure=failure,
            message=message,
            submitted_ns=r.submitted_ns,
            deadline_ns=r.deadline_ns,
            started_ns=started_ns,
            finished_ns=finished_ns,
            batch_size=batch_size,
        )

    def _fail(self, r: _Request, failure: DetectionFailure, message: str) -> None:
        now = self.clock.monotonic_ns()
        self._resolve(r, self._outcome(r, None, failure, message, 0, now, 0))

    def _resolve(self, r: _Request, outcome: DetectionOutcome) -> bool:
        """Set the future once; False when it was already answered (e.g. timed out before the result came)."""
        try:
            r.future.set_result(outcome)  # outside our lock: done-callbacks run here
        except InvalidStateError:
            return False
        with self._cond:
            if outcome.failure is None:
                self._completed += 1
            else:
                self._failed[outcome.failure.value] += 1
                logger.warning("detection for %r failed: %s: %s", r.tag, outcome.failure.value, outcome.message)
        return True
