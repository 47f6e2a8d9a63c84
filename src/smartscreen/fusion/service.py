"""A small waybill web service (``GET /waybills/{tracking_no}``) for the demo, tests and integrators.

It serves a table (JSON/CSV) through the same record schema :class:`HttpWaybillLookup` reads,
and can be told to stall or fail so the line's fault handling can be exercised.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from smartscreen.fusion.waybills import WaybillRecord

logger = logging.getLogger(__name__)


class WaybillHttpServer:
    """Serves waybill records on ``host:port`` (port 0 picks a free one) from a background thread."""

    def __init__(self, records: list[WaybillRecord], host: str = "127.0.0.1", port: int = 0) -> None:
        self._table = {r.tracking_no: r.model_dump_json().encode() for r in records}
        self.delay_s = 0.0
        self.fail_status: int | None = None
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if server.delay_s:
                    time.sleep(server.delay_s)
                prefix = "/waybills/"
                if server.fail_status is not None:
                    self._send(server.fail_status, b'{"error": "unavailable"}')
                elif not self.path.startswith(prefix):
                    self._send(404, b'{"error": "not found"}')
                else:
                    body = server._table.get(unquote(self.path[len(prefix) :]))
                    self._send(200, body) if body is not None else self._send(404, b'{"error": "unknown"}')

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError) as e:
                    logger.debug("waybill client went away: %s", e)

            def log_message(self, format: str, *args: object) -> None:  # keep tracking numbers out of stderr
                return

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="waybill-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> WaybillHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WaybillHttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def records_json(records: list[WaybillRecord]) -> str:
    return json.dumps({"waybills": [r.model_dump(mode="json") for r in records]}, ensure_ascii=False, indent=1)
