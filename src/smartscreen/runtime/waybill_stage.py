"""Waybill lookups off the critical path: prefetched when the upstream reader sees a label.

The barcode reader stands upstream of the scanner, so the lookup usually finishes before the
parcel's scan does. A bounded thread pool runs the lookups; the decision stage waits for the
answer only as long as its deadline allows. A service that fails or is too slow gives an
explicit error, and the parcel fails closed.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from smartscreen.domain.ports import WaybillLookup
from smartscreen.domain.waybill import Waybill
from smartscreen.errors import WaybillServiceError

logger = logging.getLogger(__name__)


class WaybillStage:
    def __init__(self, lookup: WaybillLookup, *, workers: int = 2, remember: int = 4096) -> None:
        self.lookup = lookup
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="waybill")
        self._futures: OrderedDict[str, Future[Waybill | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._remember = remember
        self.errors = 0
        self.timeouts = 0

    def prefetch(self, tracking_no: str) -> Future[Waybill | None]:
        with self._lock:
            future = self._futures.get(tracking_no)
            if future is None or (future.done() and future.exception() is not None):
                future = self._pool.submit(self.lookup.lookup, tracking_no)
                self._futures[tracking_no] = future
                while len(self._futures) > self._remember:
                    self._futures.popitem(last=False)
            return future

    def get(self, tracking_no: str, timeout_s: float) -> tuple[Waybill | None, str]:
        """The waybill (None when unknown) and an error text ("" when the service answered)."""
        future = self.prefetch(tracking_no)
        try:
            return future.result(timeout=max(timeout_s, 0.0)), ""
        except FutureTimeout:
            self.timeouts += 1
            return None, f"waybill lookup still running after {timeout_s * 1000:.0f} ms"
        except WaybillServiceError as e:
            self.errors += 1
            return None, str(e)
        except Exception as e:  # an adapter bug must not clear a parcel: report it as a service error
            self.errors += 1
            logger.exception("waybill lookup crashed")
            return None, f"waybill lookup failed: {type(e).__name__}"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.lookup, "close", None)
        if callable(close):
            close()
