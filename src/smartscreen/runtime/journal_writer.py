"""The journal stage: one thread owns the journal connection and group-commits events.

:meth:`JournalWriter.append` returns once the events are committed (durable: SQLite WAL with
``synchronous=FULL``, or PostgreSQL); the gate stage uses it to write ahead of every command.
:meth:`JournalWriter.post` queues events without waiting (stages that read devices must never
block on a disk). Events are committed in the order they were handed over, so whatever was
posted before a durable append is durable when that append returns. Events that arrive while a
commit runs are written together in the next transaction, so many stages pay for one fsync. A
failed commit raises :class:`~smartscreen.errors.StorageError` in every waiter and is counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

from smartscreen.domain.events import ParcelEvent
from smartscreen.errors import StorageError
from smartscreen.journal import Journal

logger = logging.getLogger(__name__)


class JournalWriter:
    def __init__(self, journal: Journal, *, max_pending: int = 10_000, timeout_s: float = 10.0) -> None:
        self.journal = journal
        self._pending: list[tuple[Sequence[ParcelEvent], Future[list[int]]]] = []
        self._cond = threading.Condition()
        self._max_pending = max_pending
        self._timeout_s = timeout_s
        self._running = False
        self._thread: threading.Thread | None = None
        self.events_written = 0
        self.commits = 0
        self.errors = 0
        self.heartbeat_s = time.monotonic()
        self.cpu_s = 0.0

    def start(self) -> JournalWriter:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="journal", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def depth(self) -> int:
        with self._cond:
            return sum(len(e) for e, _ in self._pending)

    def post(self, events: Sequence[ParcelEvent]) -> None:
        """Queue events for the next commit without waiting (failures are logged and counted)."""
        if not events:
            return
        future: Future[list[int]] = Future()
        with self._cond:
            if not self._running:
                raise StorageError("the journal writer is not running")
            if len(self._pending) >= self._max_pending:
                self.errors += 1
                raise StorageError(f"journal backlog full ({self._max_pending} batches): storage is too slow")
            self._pending.append((list(events), future))
            self._cond.notify()

    def append(self, events: Sequence[ParcelEvent]) -> list[int]:
        """Record events durably (one transaction with whatever else is waiting); returns their sequence numbers."""
        if not events:
            return []
        future: Future[list[int]] = Future()
        with self._cond:
            if not self._running:
                raise StorageError("the journal writer is not running")
            if len(self._pending) >= self._max_pending:
                raise StorageError(f"journal backlog full ({self._max_pending} batches): storage is too slow")
            self._pending.append((list(events), future))
            self._cond.notify()
        try:
            return future.result(timeout=self._timeout_s)
        except TimeoutError as e:
            raise StorageError(f"journal commit took longer than {self._timeout_s} s") from e

    def _run(self) -> None:
        cpu0 = time.thread_time()
        while True:
            with self._cond:
                while self._running and not self._pending:
                    self._cond.wait(0.2)
                    self.heartbeat_s = time.monotonic()
                batch, self._pending = self._pending, []
                if not batch and not self._running:
                    break
            self.heartbeat_s = time.monotonic()
            events = [e for group, _ in batch for e in group]
            try:
                seqs = self.journal.append_many(events)
            except Exception as e:  # every waiter gets the error: nothing is silently dropped
                self.errors += 1
                logger.exception("journal commit of %d events failed", len(events))
                error = e if isinstance(e, StorageError) else StorageError(f"journal commit failed: {e}")
                for _, future in batch:
                    future.set_exception(error)
            else:
                self.commits += 1
                self.events_written += len(events)
                i = 0
                for group, future in batch:
                    future.set_result(seqs[i : i + len(group)])
                    i += len(group)
            self.cpu_s = time.thread_time() - cpu0
