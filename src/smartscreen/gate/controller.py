"""The gate stage: exactly one command per parcel, before its deadline, or a recorded fail-closed REJECT.

One :class:`GateController` per line owns that line's :class:`~smartscreen.domain.ports.GateActuator`
from a single thread. Parcels are registered when they enter the tunnel (:meth:`expect`), so a
parcel whose decision never comes (stalled detector, lost lines, crashed stage) still gets a
fail-closed REJECT ``guard_ms`` before its deadline. Decisions (:meth:`submit`) are commanded
if they arrive in time; a decision for a parcel already commanded is recorded as a deadline miss
and dropped. A gate whose heartbeat is lost gets no commands: its parcels are recorded as
fail-closed REJECT (``gate_link_down``) and the PLC/board diverts them by its own default.

Every command is journaled (``ParcelDecided`` + ``GateCommanded``, durable) *before* it leaves,
and its acknowledgement after. If the journal cannot record a CLEAR, the parcel is rejected
instead: nothing is released without a record.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from smartscreen.domain.decision import Decision, Reason, ReasonCode, RiskAssessment, Route
from smartscreen.domain.events import DeadlineMissed, GateAcknowledged, GateCommanded, ParcelDecided, ParcelEvent
from smartscreen.domain.io import GateCommand
from smartscreen.domain.ports import GateActuator
from smartscreen.errors import GateError, SmartScreenError
from smartscreen.gate.timing import NS_PER_MS, GateTiming

logger = logging.getLogger(__name__)

JournalSink = Callable[[Sequence[ParcelEvent]], object]


class GateStatus(StrEnum):
    ACKNOWLEDGED = "acknowledged"  # the gate accepted the command
    REFUSED = "refused"  # the gate answered but refused (too late, duplicate): it diverts by default
    NO_ACK = "no_ack"  # no acknowledgement in time / link error: the gate diverts by default
    LINK_DOWN = "link_down"  # not sent: heartbeat lost; the gate diverts by default


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """What happened to one parcel at the gate stage (for metrics and tests)."""

    parcel_id: str
    decision: Decision
    status: GateStatus
    sequence: int
    deadline_ns: int
    commanded_at_ns: int
    policy_route: Route | None  # the policy's route when a decision arrived in time, else None
    late: bool  # the policy decision missed its deadline (or never came)


@dataclass(slots=True)
class _Parcel:
    parcel_id: str
    entered_at_ns: int
    deadline_ns: int
    fallback_ns: int
    done: bool = False


@dataclass(slots=True)
class _Submission:
    decision: Decision
    assessment: RiskAssessment | None
    entered_at_ns: int
    submitted_ns: int = field(default=0)
    events: tuple[ParcelEvent, ...] = ()


class _WallClock:
    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


class GateController:
    """Deadline keeper and single owner of one line's gate actuator."""

    def __init__(
        self,
        actuator: GateActuator,
        timing: GateTiming,
        *,
        line_id: str,
        policy_version: str,
        journal: JournalSink,
        ack_timeout_ms: float = 100.0,
        on_outcome: Callable[[GateOutcome], None] | None = None,
        clock: _WallClock | None = None,
        first_sequence: int = 1,
    ) -> None:
        self._actuator = actuator
        self.timing = timing
        self._line_id = line_id
        self._policy_version = policy_version
        self._journal = journal
        self._ack_timeout_ns = round(ack_timeout_ms * NS_PER_MS)
        self._on_outcome = on_outcome
        self._clock = clock or _WallClock()
        self._sequence = first_sequence
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._parcels: dict[str, _Parcel] = {}
        self._heap: list[tuple[int, str]] = []
        self._inbox: deque[_Submission] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.commands = 0
        self.fallbacks = 0
        self.late_decisions = 0
        self.journal_errors = 0
        self.gate_errors = 0
        self.heartbeat_s = time.monotonic()
        self.cpu_s = 0.0

    # --- called from other stages (thread-safe) --------------------------------------------
    def expect(self, parcel_id: str, entered_at_ns: int) -> int:
        """Register a parcel that entered the tunnel; returns its gate deadline (ns, wall clock)."""
        with self._lock:
            parcel = self._register(parcel_id, entered_at_ns)
            self._wake.notify()
            return parcel.deadline_ns

    def submit(
        self,
        decision: Decision,
        entered_at_ns: int,
        assessment: RiskAssessment | None = None,
        events: Sequence[ParcelEvent] = (),
    ) -> None:
        """Hand over a parcel's decision; the gate thread commands it if it is still in time.

        ``events`` (the parcel's fusion and detection facts) are journaled in the same transaction
        as the decision and command, so the critical path pays for one durable write.
        """
        with self._lock:
            self._inbox.append(_Submission(decision, assessment, entered_at_ns, self._clock.time_ns(), tuple(events)))
            self._wake.notify()

    def _register(self, parcel_id: str, entered_at_ns: int) -> _Parcel:
        parcel = self._parcels.get(parcel_id)
        if parcel is None:
            parcel = _Parcel(
                parcel_id,
                entered_at_ns,
                self.timing.deadline_ns(entered_at_ns),
                self.timing.fallback_at_ns(entered_at_ns),
            )
            self._parcels[parcel_id] = parcel
            heapq.heappush(self._heap, (parcel.fallback_ns, parcel_id))
        return parcel

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(1 for p in self._parcels.values() if not p.done)

    # --- the gate thread -------------------------------------------------------------------
    def start(self) -> GateController:
        self._thread = threading.Thread(target=self._run, name=f"gate-{self._line_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop the thread; with ``drain_s`` > 0, first wait that long for pending parcels to be commanded."""
        end = time.monotonic() + drain_s
        while drain_s > 0 and self.pending and time.monotonic() < end:
            time.sleep(0.01)
        self._stop.set()
        with self._lock:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        cpu0 = time.thread_time()
        while not self._stop.is_set():
            with self._lock:
                now = self._clock.time_ns()
                timeout_s = 0.05
                if self._heap:
                    timeout_s = min(timeout_s, max((self._heap[0][0] - now) / 1e9, 0.0))
                if not self._inbox and timeout_s > 0:
                    self._wake.wait(timeout_s)
            self.heartbeat_s = time.monotonic()
            try:
                self.step()
            except Exception:  # the gate thread must survive anything; parcels stay registered for fallback
                logger.exception("gate %s: unexpected error", self._line_id)
            self.cpu_s = time.thread_time() - cpu0

    def step(self) -> None:
        """Command everything that is due: submitted decisions, then fallbacks whose time has come."""
        while True:
            with self._lock:
                if not self._inbox:
                    break
                sub = self._inbox.popleft()
                parcel = self._register(sub.decision.parcel_id, sub.entered_at_ns)
            self._handle_decision(parcel, sub)
        now = self._clock.time_ns()
        due: list[_Parcel] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _, parcel_id = heapq.heappop(self._heap)
                waiting = self._parcels.get(parcel_id)
                if waiting is not None and not waiting.done:
                    due.append(waiting)
            # forget parcels long past their gate
            horizon = now - 10 * self.timing.travel_ns
            for parcel_id in [k for k, p in self._parcels.items() if p.done and p.deadline_ns < horizon]:
                del self._parcels[parcel_id]
        for parcel in due:
            self._fallback(parcel, now)

    def _handle_decision(self, parcel: _Parcel, sub: _Submission) -> None:
        now = self._clock.time_ns()
        decision = sub.decision
        if parcel.done:
            self.late_decisions += 1
            late_ms = (now - parcel.fallback_ns) / NS_PER_MS
            logger.warning(
                "gate %s: decision for %s came %.0f ms after its fallback", self._line_id, parcel.parcel_id, late_ms
            )
            self._record([*sub.events, DeadlineMissed(parcel.parcel_id, now, "decision", max(late_ms, 0.0))])
            return
        late = now > parcel.deadline_ns
        extra: list[ParcelEvent] = list(sub.events)
        if late:
            self.late_decisions += 1
            late_ms = (now - parcel.deadline_ns) / NS_PER_MS
            extra.append(DeadlineMissed(parcel.parcel_id, now, "decision", late_ms))
            decision = self._fail_closed(decision, ReasonCode.DEADLINE_MISSED, f"decided {late_ms:.0f} ms late", now)
        self._command(parcel, decision, sub.assessment, now, extra, policy_route=None if late else sub.decision.route)

    def _fallback(self, parcel: _Parcel, now: int) -> None:
        self.fallbacks += 1
        waited_ms = (now - parcel.entered_at_ns) / NS_PER_MS
        decision = Decision.fail_closed_reject(
            parcel.parcel_id,
            ReasonCode.DEADLINE_MISSED,
            f"no decision {waited_ms:.0f} ms after entry, {self.timing.guard_ms:.0f} ms before the gate deadline",
            self._policy_version,
            now,
        )
        late_ms = max((now - parcel.fallback_ns) / NS_PER_MS, 0.0)
        self._command(parcel, decision, None, now, [DeadlineMissed(parcel.parcel_id, now, "decision", late_ms)], None)

    def _fail_closed(self, decision: Decision, code: ReasonCode, detail: str, now: int) -> Decision:
        reasons = (Reason(code, detail, 1.0), *(r for r in decision.reasons if r.code is not code))
        return Decision(
            parcel_id=decision.parcel_id,
            route=Route.REJECT,
            reasons=reasons,
            policy_version=decision.policy_version,
            decided_at_ns=now,
            fail_closed=True,
        )

    def _record(self, events: Sequence[ParcelEvent]) -> bool:
        try:
            self._journal(events)
            return True
        except (SmartScreenError, OSError) as e:
            self.journal_errors += 1
            logger.error("gate %s: journal write failed: %s", self._line_id, e)
            return False

    def _command(
        self,
        parcel: _Parcel,
        decision: Decision,
        assessment: RiskAssessment | None,
        now: int,
        extra: list[ParcelEvent],
        policy_route: Route | None,
    ) -> None:
        parcel.done = True
        if not self._actuator.link_alive():
            decision = self._fail_closed(decision, ReasonCode.GATE_LINK_DOWN, "gate heartbeat lost; not commanded", now)
            self._record([*extra, ParcelDecided(parcel.parcel_id, now, assessment, decision)])
            self._finish(parcel, decision, GateStatus.LINK_DOWN, 0, now, policy_route)
            return
        sequence = self._sequence
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF or 1
        events: list[ParcelEvent] = [*extra, ParcelDecided(parcel.parcel_id, now, assessment, decision)]
        events.append(GateCommanded(parcel.parcel_id, now, decision.route, sequence, parcel.deadline_ns))
        if not self._record(events) and decision.route is Route.CLEAR:
            decision = self._fail_closed(decision, ReasonCode.INTERNAL_ERROR, "journal unavailable", now)
            self._record([ParcelDecided(parcel.parcel_id, now, assessment, decision)])
        command = GateCommand(parcel.parcel_id, decision.route, sequence, parcel.deadline_ns)
        timeout_ns = max(min(self._ack_timeout_ns, parcel.deadline_ns + self._ack_timeout_ns - now), NS_PER_MS)
        self.commands += 1
        try:
            ack = self._actuator.command(command, timeout_ns / 1e9)
        except GateError as e:
            self.gate_errors += 1
            done = self._clock.time_ns()
            logger.warning("gate %s: %s not acknowledged: %s", self._line_id, parcel.parcel_id, e)
            self._record(
                [DeadlineMissed(parcel.parcel_id, done, "gate_ack", max((done - parcel.deadline_ns) / NS_PER_MS, 0.0))]
            )
            self._finish(parcel, decision, GateStatus.NO_ACK, sequence, now, policy_route)
            return
        events = [GateAcknowledged(parcel.parcel_id, ack.at_ns, ack.sequence, ack.accepted, ack.route)]
        if not ack.accepted:
            events.append(
                DeadlineMissed(
                    parcel.parcel_id, ack.at_ns, "gate", max((ack.at_ns - parcel.deadline_ns) / NS_PER_MS, 0.0)
                )
            )
        self._record(events)
        self._finish(
            parcel,
            decision,
            GateStatus.ACKNOWLEDGED if ack.accepted else GateStatus.REFUSED,
            sequence,
            now,
            policy_route,
        )

    def _finish(
        self,
        parcel: _Parcel,
        decision: Decision,
        status: GateStatus,
        sequence: int,
        now: int,
        policy_route: Route | None,
    ) -> None:
        if self._on_outcome is not None:
            outcome = GateOutcome(
                parcel.parcel_id,
                decision,
                status,
                sequence,
                parcel.deadline_ns,
                now,
                policy_route,
                policy_route is None,
            )
            try:
                self._on_outcome(outcome)
            except Exception:  # a metrics hook must never break the gate
                logger.exception("gate %s: outcome hook failed", self._line_id)
