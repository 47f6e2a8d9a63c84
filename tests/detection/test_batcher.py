from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest

from smartscreen.detection.batcher import (
    BatchPlanner,
    DetectionFailure,
    DetectionOutcome,
    LatencyModel,
    MicroBatcher,
    _Request,
)
from smartscreen.detection.engine import OnnxDetector
from smartscreen.detection.package import ModelPackage
from smartscreen.domain.detections import Detections
from smartscreen.domain.render import RenderedScan
from tests.detection.test_engine import parcel_image, rendered

MS = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self._now = 1_000 * MS
        self._lock = threading.Lock()

    def monotonic_ns(self) -> int:
        with self._lock:
            return self._now

    def time_ns(self) -> int:
        return self.monotonic_ns()

    def advance_ms(self, ms: float) -> None:
        with self._lock:
            self._now += int(ms * MS)

    def at(self, ms: float) -> int:
        """An absolute time ``ms`` after the clock's start."""
        return 1_000 * MS + int(ms * MS)


class GatedSession:
    """The tiny model's real session, but ``run`` blocks while the gate is closed: a deliberately stalled model."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls = 0

    def get_inputs(self) -> Sequence[Any]:
        return self.real.get_inputs()  # type: ignore[no-any-return]

    def get_outputs(self) -> Sequence[Any]:
        return self.real.get_outputs()  # type: ignore[no-any-return]

    def run(self, names: Sequence[str] | None, feed: Mapping[str, Any]) -> Sequence[Any]:
        self.calls += 1
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise RuntimeError("test gate never opened")
        return self.real.run(names, feed)  # type: ignore[no-any-return]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + 10
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def result(future: Future[DetectionOutcome]) -> DetectionOutcome:
    return future.result(timeout=10)


@pytest.fixture(scope="module")
def scan() -> RenderedScan:
    return rendered(parcel_image(500, 1024, [(300, 100, 500, 300, (0, 0, 0))]))


@pytest.fixture
def gated(tiny_package: ModelPackage, tiny_detector: OnnxDetector) -> tuple[OnnxDetector, GatedSession]:
    session = GatedSession(tiny_detector._session)
    detector = OnnxDetector(session, tiny_package, max_batch=8, warmup=False)
    session.entered.clear()  # construction ran the validation probe
    return detector, session


# ---------------------------------------------------------------- pure planner


def _req(seq: int, deadline_ms: float, submitted_ms: float = 0.0) -> _Request:
    return _Request(seq, None, int(deadline_ms * MS), int(submitted_ms * MS), seq, Future())  # type: ignore[arg-type]


def test_latency_model_scales_and_learns() -> None:
    now = [0]
    model = LatencyModel(10.0, window=3, safety_factor=1.0, margin_ms=0.0, clock_ns=lambda: now[0])
    assert model.raw_ns(4) == pytest.approx(40 * MS)  # nothing measured: the start value, scaled
    model.observe(4, 20 * MS)  # the first measurement of a size replaces the scaled guess
    assert model.raw_ns(4) == pytest.approx(20 * MS)
    model.observe(4, 40 * MS)  # median of the window
    assert model.raw_ns(4) == pytest.approx(30 * MS)
    assert model.raw_ns(8) == pytest.approx(60 * MS)  # scaled from the nearest measured size
    assert model.estimate_ns(8) > model.raw_ns(8) * 0.99


def test_one_stall_does_not_move_the_estimate_and_a_lasting_change_does() -> None:
    now = [0]
    model = LatencyModel(20.0, window=9, safety_factor=1.0, margin_ms=0.0, clock_ns=lambda: now[0])
    for _ in range(8):
        model.observe(1, 20 * MS)
    model.observe(1, 2_000 * MS)  # one stalled inference
    assert model.raw_ns(1) == pytest.approx(20 * MS)
    for _ in range(5):  # the model really got slower: a majority of the window
        model.observe(1, 80 * MS)
    assert model.raw_ns(1) == pytest.approx(80 * MS)


def test_an_estimate_that_locked_out_every_scan_recovers_by_age() -> None:
    now = [0]
    model = LatencyModel(20.0, window=3, max_age_s=30.0, safety_factor=1.0, margin_ms=0.0, clock_ns=lambda: now[0])
    for _ in range(3):
        model.observe(1, 900 * MS)  # a slow spell; every later scan expires unrun, nothing new is measured
    planner = BatchPlanner(max_batch=1, max_wait_ns=0, latency=model)
    planner.push(_req(0, deadline_ms=500))
    assert [r.tag for r in planner.plan(now_ns=0, executor_free=True).expired] == [0]
    now[0] = 31 * 1_000_000_000  # 31 s later the slow measurements are forgotten: back to the warm-up value
    assert model.raw_ns(1) == pytest.approx(20 * MS)
    planner.push(_req(1, deadline_ms=31_000 + 500))
    plan = planner.plan(now_ns=now[0], executor_free=True)
    assert plan.expired == [] and [r.tag for r in plan.batch] == [1]


def test_planner_orders_by_deadline_and_waits_to_fill() -> None:
    planner = BatchPlanner(max_batch=3, max_wait_ns=20 * MS, latency=LatencyModel(5.0, safety_factor=1.0, margin_ms=0))
    for seq, deadline in enumerate([500, 200, 300]):
        planner.push(_req(seq, deadline))
    full = planner.plan(now_ns=1 * MS, executor_free=True)
    assert [r.tag for r in full.batch] == [1, 2, 0]  # earliest deadline first, sent at once because full
    planner.push(_req(3, 400))
    waiting = planner.plan(now_ns=1 * MS, executor_free=True)
    assert waiting.batch == [] and waiting.wake_at_ns == 20 * MS  # not full, no deadline at risk: wait
    assert [r.tag for r in planner.plan(now_ns=20 * MS, executor_free=True).batch] == [3]  # max wait reached


def test_planner_never_waits_past_what_a_deadline_allows() -> None:
    planner = BatchPlanner(
        max_batch=8, max_wait_ns=1000 * MS, latency=LatencyModel(10.0, safety_factor=1.0, margin_ms=0)
    )
    planner.push(_req(0, 50))
    early = planner.plan(now_ns=0, executor_free=True)
    assert early.batch == [] and early.wake_at_ns == 30 * MS  # 50 ms deadline - 20 ms for a batch of 2
    assert [r.tag for r in planner.plan(now_ns=30 * MS, executor_free=True).batch] == [0]


def test_planner_cuts_the_batch_to_meet_the_earliest_deadline() -> None:
    planner = BatchPlanner(max_batch=8, max_wait_ns=0, latency=LatencyModel(10.0, safety_factor=1.0, margin_ms=0))
    for seq in range(6):
        planner.push(_req(seq, 35 + seq))
    plan = planner.plan(now_ns=0, executor_free=True)
    assert [r.tag for r in plan.batch] == [0, 1, 2]  # 3 x 10 ms fits the 35 ms deadline, 4 would not
    assert len(planner) == 3


def test_planner_expires_what_cannot_be_done_and_holds_while_busy() -> None:
    planner = BatchPlanner(max_batch=4, max_wait_ns=0, latency=LatencyModel(10.0, safety_factor=1.0, margin_ms=0))
    planner.push(_req(0, 5))
    planner.push(_req(1, 100))
    busy = planner.plan(now_ns=0, executor_free=False)
    assert [r.tag for r in busy.expired] == [0]  # 5 ms left, one scan takes 10 ms
    assert busy.batch == [] and busy.wake_at_ns == 90 * MS  # re-plan when scan 1 would expire
    assert [r.tag for r in planner.plan(now_ns=91 * MS, executor_free=False).expired] == [1]


# ---------------------------------------------------------------- threads, fake clock, real tiny model


def test_scans_from_several_lines_are_batched_and_answered(tiny_detector: OnnxDetector, scan: RenderedScan) -> None:
    clock = FakeClock()
    with MicroBatcher(tiny_detector, max_batch=4, max_wait_ms=10, clock=clock, poll_interval_s=0.001) as batcher:
        futures = [batcher.submit(scan, clock.at(1000), tag=f"line{k % 2}-{k}") for k in range(4)]
        outcomes = [result(f) for f in futures]
    expected = tiny_detector.detect([scan])[0]
    for k, outcome in enumerate(outcomes):
        assert outcome.ok and outcome.failure is None and outcome.tag == f"line{k % 2}-{k}"
        assert outcome.batch_size == 4
        assert isinstance(outcome.detections, Detections)
        np.testing.assert_allclose(outcome.detections.xyxy, expected.xyxy, atol=1e-3)
    assert batcher.stats().batches == 1 and batcher.stats().completed == 4


def test_a_scan_is_sent_alone_rather_than_miss_its_deadline(tiny_detector: OnnxDetector, scan: RenderedScan) -> None:
    clock = FakeClock()
    batcher = MicroBatcher(
        tiny_detector, max_batch=8, max_wait_ms=1000, initial_latency_ms=10, clock=clock, poll_interval_s=0.001
    )
    with batcher:
        future = batcher.submit(scan, clock.at(50))
        assert not future.done()
        clock.advance_ms(30)  # 50 ms deadline - (2 x 10 ms x 1.25 + 2 ms) for a batch of two = 23 ms
        batcher.wake()
        outcome = result(future)
    assert outcome.ok and outcome.batch_size == 1
    assert outcome.finished_ns <= outcome.deadline_ns


def test_stalled_inference_gives_explicit_errors_and_never_holds_a_scan_past_its_deadline(
    gated: tuple[OnnxDetector, GatedSession], scan: RenderedScan
) -> None:
    detector, session = gated
    clock = FakeClock()
    batcher = MicroBatcher(
        detector, max_batch=4, max_wait_ms=5, timeout_ms=100, initial_latency_ms=10, clock=clock, poll_interval_s=0.001
    )
    with batcher:
        session.gate.clear()  # the model stalls from now on
        first = [batcher.submit(scan, clock.at(1000), tag=k) for k in range(2)]
        short = batcher.submit(scan, clock.at(60), tag="short")  # same batch, earlier deadline
        clock.advance_ms(5)
        batcher.wake()
        wait_for(lambda: session.entered.is_set(), "the batch to reach the model")
        assert batcher.stats().in_flight == 3
        clock.advance_ms(56)  # past the short deadline, before the 100 ms timeout
        batcher.wake()
        missed = result(short)
        assert missed.failure is DetectionFailure.DEADLINE_MISSED and "still running" in missed.message
        assert not any(f.done() for f in first)
        clock.advance_ms(45)  # 101 ms into the batch (started at 5 ms): timeout
        batcher.wake()
        for f in first:
            outcome = result(f)
            assert outcome.failure is DetectionFailure.TIMEOUT and outcome.detections is None
            assert "stalled" in outcome.message
        # while the model is still stuck, a new scan is answered by its deadline, not held
        blocked = batcher.submit(scan, clock.at(150), tag="blocked")
        clock.advance_ms(40)  # 146 ms: 4 ms left, one scan takes about 10 ms
        batcher.wake()
        outcome = result(blocked)
        assert outcome.failure is DetectionFailure.DEADLINE_MISSED and "busy" in outcome.message
        session.gate.set()  # the model recovers: its late results are discarded, not delivered
        wait_for(lambda: batcher.stats().late_results_discarded == 3, "late results to be discarded")
        fresh = batcher.submit(scan, clock.at(2000), tag="fresh")
        clock.advance_ms(5)
        batcher.wake()
        assert result(fresh).ok
    stats = batcher.stats()
    assert stats.failed["inference_timeout"] == 2 and stats.failed["deadline_missed"] == 2
    assert stats.completed == 1


def test_full_queue_refuses_explicitly(gated: tuple[OnnxDetector, GatedSession], scan: RenderedScan) -> None:
    detector, session = gated
    clock = FakeClock()
    batcher = MicroBatcher(detector, max_batch=1, max_wait_ms=0, max_queue=2, clock=clock, poll_interval_s=0.001)
    with batcher:
        session.gate.clear()
        running = batcher.submit(scan, clock.at(10_000))
        wait_for(lambda: session.entered.is_set(), "the first scan to reach the model")
        queued = [batcher.submit(scan, clock.at(10_000)) for _ in range(2)]
        refused = batcher.submit(scan, clock.at(10_000), tag="overflow")
        assert refused.done()
        outcome = result(refused)
        assert outcome.failure is DetectionFailure.QUEUE_FULL and outcome.tag == "overflow"
        assert "queue full" in outcome.message
        assert batcher.queue_depth == 2
        session.gate.set()
        assert all(result(f).ok for f in [running, *queued])


def test_detector_error_fails_every_scan_of_the_batch(scan: RenderedScan) -> None:
    class Broken:
        model_id = "broken@0"
        class_names = ("a",)

        def detect(self, scans: Sequence[RenderedScan]) -> list[Detections]:
            raise RuntimeError("CUDA error: device lost")

    clock = FakeClock()
    with MicroBatcher(
        Broken(), max_batch=3, max_wait_ms=0, initial_latency_ms=1, clock=clock, poll_interval_s=0.001
    ) as b:
        futures = [b.submit(scan, clock.at(1000)) for _ in range(3)]
        outcomes = [result(f) for f in futures]
    assert {o.failure for o in outcomes} == {DetectionFailure.INFERENCE_ERROR}
    assert all("device lost" in o.message for o in outcomes)


def test_stop_answers_pending_scans(gated: tuple[OnnxDetector, GatedSession], scan: RenderedScan) -> None:
    detector, _ = gated
    clock = FakeClock()
    batcher = MicroBatcher(detector, max_batch=8, max_wait_ms=10_000, clock=clock, poll_interval_s=0.001).start()
    pending = batcher.submit(scan, clock.at(100_000))
    batcher.stop()
    assert result(pending).failure is DetectionFailure.STOPPED
    assert result(batcher.submit(scan, clock.at(100_000))).failure is DetectionFailure.STOPPED


def test_real_clock_two_lines_submitting_concurrently(tiny_detector: OnnxDetector, scan: RenderedScan) -> None:
    from smartscreen.config import DetectorConfig

    config = DetectorConfig(max_batch=4, max_wait_ms=5, timeout_ms=30_000)
    outcomes: list[DetectionOutcome] = []
    with MicroBatcher.from_config(tiny_detector, config) as batcher:

        def line(name: str) -> None:
            futures = [batcher.submit(scan, time.monotonic_ns() + 30_000 * MS, tag=f"{name}-{k}") for k in range(6)]
            outcomes.extend(result(f) for f in futures)

        threads = [threading.Thread(target=line, args=(n,)) for n in ("L1", "L2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert len(outcomes) == 12 and all(o.ok for o in outcomes)
    assert {o.tag for o in outcomes} == {f"{n}-{k}" for n in ("L1", "L2") for k in range(6)}
    assert all(o.finished_ns <= o.deadline_ns for o in outcomes)
    stats = batcher.stats()
    assert stats.completed == 12 and stats.batches <= 12
