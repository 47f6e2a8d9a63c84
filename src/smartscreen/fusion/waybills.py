"""Waybill lookup adapters behind :class:`smartscreen.domain.ports.WaybillLookup`.

- :class:`TableWaybillLookup`: the embedded default, a table loaded from a JSON or CSV file.
- :class:`SqliteWaybillLookup`: a SQLite table (``waybills(tracking_no PRIMARY KEY, record JSON)``),
  filled from CSV/JSON with :func:`import_waybills`.
- :class:`HttpWaybillLookup`: a carrier/centre waybill service, ``GET {base}/waybills/{tracking_no}``
  (200 JSON record, 404 unknown), with a timeout, one retry when time allows, and an LRU cache that
  also serves stale entries while the service is down.

:func:`open_waybill_lookup` picks the adapter from a URL (``file://``, ``sqlite:///``, ``http(s)://``).
Records follow the canonical schema of ``shared/reference/waybill.md`` section 3; personal data is
kept in :class:`~smartscreen.domain.PersonalData` and never logged.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartscreen.domain.waybill import DeclaredItem, PersonalData, Waybill
from smartscreen.errors import ConfigError, WaybillServiceError

logger = logging.getLogger(__name__)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DeclaredItemRecord(_Record):
    name: str
    category_code: str = ""
    quantity: int = Field(default=1, ge=0)
    value_cny: float = Field(default=0.0, ge=0)


class PiiRecord(_Record):
    sender_name: str = ""
    sender_phone: str = ""
    sender_address: str = ""
    recipient_name: str = ""
    recipient_phone: str = ""
    recipient_address: str = ""


class WaybillRecord(_Record):
    """The canonical waybill record on the wire and in files."""

    tracking_no: str = Field(min_length=1, max_length=64)
    carrier_code: str = ""
    declared_items: tuple[DeclaredItemRecord, ...] = ()
    declared_weight_g: int | None = Field(default=None, ge=0)
    measured_weight_g: int | None = Field(default=None, ge=0)
    dims_mm: tuple[int, int, int] | None = None
    origin_region_code: str = ""
    dest_region_code: str = ""
    route_label: str = ""
    sender_id: str = ""
    sender_prior_parcels: int = Field(default=0, ge=0)
    sender_prior_alarms: int = Field(default=0, ge=0)
    insured: bool = False
    cash_on_delivery: bool = False
    real_name_verified: bool = True
    pii: PiiRecord = Field(default_factory=PiiRecord)

    def to_domain(self) -> Waybill:
        return Waybill(
            tracking_no=self.tracking_no,
            carrier_code=self.carrier_code,
            declared_items=tuple(
                DeclaredItem(i.name, i.category_code, i.quantity, i.value_cny) for i in self.declared_items
            ),
            declared_weight_g=self.declared_weight_g,
            measured_weight_g=self.measured_weight_g,
            dims_mm=self.dims_mm,
            origin_region_code=self.origin_region_code,
            dest_region_code=self.dest_region_code,
            route_label=self.route_label,
            sender_id=self.sender_id,
            sender_prior_parcels=self.sender_prior_parcels,
            sender_prior_alarms=self.sender_prior_alarms,
            insured=self.insured,
            cash_on_delivery=self.cash_on_delivery,
            real_name_verified=self.real_name_verified,
            pii=PersonalData(**self.pii.model_dump()),
        )

    @classmethod
    def from_domain(cls, waybill: Waybill) -> WaybillRecord:
        pii = waybill.pii
        return cls(
            tracking_no=waybill.tracking_no,
            carrier_code=waybill.carrier_code,
            declared_items=tuple(
                DeclaredItemRecord(
                    name=i.name, category_code=i.category_code, quantity=i.quantity, value_cny=i.value_cny
                )
                for i in waybill.declared_items
            ),
            declared_weight_g=waybill.declared_weight_g,
            measured_weight_g=waybill.measured_weight_g,
            dims_mm=waybill.dims_mm,
            origin_region_code=waybill.origin_region_code,
            dest_region_code=waybill.dest_region_code,
            route_label=waybill.route_label,
            sender_id=waybill.sender_id,
            sender_prior_parcels=waybill.sender_prior_parcels,
            sender_prior_alarms=waybill.sender_prior_alarms,
            insured=waybill.insured,
            cash_on_delivery=waybill.cash_on_delivery,
            real_name_verified=waybill.real_name_verified,
            pii=PiiRecord(
                sender_name=pii.sender_name,
                sender_phone=pii.sender_phone,
                sender_address=pii.sender_address,
                recipient_name=pii.recipient_name,
                recipient_phone=pii.recipient_phone,
                recipient_address=pii.recipient_address,
            ),
        )


_CSV_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


def _csv_row(row: dict[str, str]) -> dict[str, object]:
    """CSV columns are the record's flat fields; ``declared_items`` is ``name|category|qty|value;...``,
    ``dims_mm`` is ``LxWxH``, personal data columns are named like the PII fields."""
    out: dict[str, object] = {}
    pii: dict[str, str] = {}
    for key, raw in row.items():
        value = (raw or "").strip()
        if key in PiiRecord.model_fields:
            pii[key] = value
        elif key == "declared_items":
            items = []
            for part in filter(None, (p.strip() for p in value.split(";"))):
                fields = [f.strip() for f in part.split("|")]
                item: dict[str, object] = {"name": fields[0]}
                if len(fields) > 1:
                    item["category_code"] = fields[1]
                if len(fields) > 2 and fields[2]:
                    item["quantity"] = int(fields[2])
                if len(fields) > 3 and fields[3]:
                    item["value_cny"] = float(fields[3])
                items.append(item)
            out[key] = items
        elif key == "dims_mm":
            out[key] = [int(v) for v in value.lower().split("x")] if value else None
        elif key in ("insured", "cash_on_delivery", "real_name_verified"):
            if value:
                if value.lower() not in _CSV_BOOL:
                    raise ValueError(f"{key} must be true/false, got {value!r}")
                out[key] = _CSV_BOOL[value.lower()]
        elif key in ("declared_weight_g", "measured_weight_g"):
            out[key] = int(float(value)) if value else None
        elif key in WaybillRecord.model_fields:
            out[key] = value
    out["pii"] = pii
    return out


def read_waybill_file(path: Path) -> list[WaybillRecord]:
    """Load records from ``.json`` (a list, or ``{"waybills": [...]}``) or ``.csv``; errors name the entry."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read waybill file {path}: {e.strerror}") from e
    rows: Iterable[object]
    if path.suffix.lower() == ".csv":
        try:
            rows = [_csv_row(r) for r in csv.DictReader(io.StringIO(text))]
        except ValueError as e:
            raise ConfigError(f"{path}: bad CSV value: {e}") from e
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}") from e
        rows = data.get("waybills", []) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: expected a list of waybills or {{'waybills': [...]}}")
    else:
        raise ConfigError(f"{path}: waybill tables must be .json or .csv")
    records = []
    for index, row in enumerate(rows):
        try:
            records.append(WaybillRecord.model_validate(row))
        except ValidationError as e:
            raise ConfigError(f"{path}: waybill #{index}: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from e
    return records


class TableWaybillLookup:
    """The embedded default: every waybill in memory, loaded from a JSON or CSV file."""

    def __init__(self, records: Iterable[WaybillRecord]) -> None:
        self._table = {r.tracking_no: r.to_domain() for r in records}

    @classmethod
    def from_file(cls, path: Path) -> TableWaybillLookup:
        return cls(read_waybill_file(path))

    def lookup(self, tracking_no: str) -> Waybill | None:
        return self._table.get(tracking_no)

    def __len__(self) -> int:
        return len(self._table)

    def close(self) -> None:
        """Nothing to release."""


_SQLITE_SCHEMA = "CREATE TABLE IF NOT EXISTS waybills (tracking_no TEXT PRIMARY KEY, record TEXT NOT NULL)"


def import_waybills(source: Path, database: Path) -> int:
    """Load a JSON/CSV waybill file into a SQLite table (insert or replace); returns the row count."""
    records = read_waybill_file(source)
    database.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(database) as conn:
        conn.execute(_SQLITE_SCHEMA)
        conn.executemany(
            "INSERT OR REPLACE INTO waybills (tracking_no, record) VALUES (?, ?)",
            [(r.tracking_no, r.model_dump_json()) for r in records],
        )
    return len(records)


class SqliteWaybillLookup:
    """Waybills in a SQLite table; one connection shared under a lock (lookups are sub-millisecond)."""

    def __init__(self, database: Path) -> None:
        if not database.exists():
            raise ConfigError(f"waybill database {database} does not exist (create it with import_waybills)")
        self._conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def lookup(self, tracking_no: str) -> Waybill | None:
        try:
            with self._lock:
                row = self._conn.execute("SELECT record FROM waybills WHERE tracking_no = ?", (tracking_no,)).fetchone()
        except sqlite3.Error as e:
            raise WaybillServiceError(f"waybill database error: {e}") from e
        if row is None:
            return None
        try:
            return WaybillRecord.model_validate_json(row[0]).to_domain()
        except ValidationError as e:
            raise WaybillServiceError(f"waybill {tracking_no}: stored record is invalid") from e

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _LruCache:
    """Thread-safe LRU of ``tracking_no -> (waybill or None, stored_at_s)``."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[str, tuple[Waybill | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[Waybill | None, float] | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                self._data.move_to_end(key)
            return entry

    def put(self, key: str, value: Waybill | None, now_s: float) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._data[key] = (value, now_s)
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


class HttpWaybillLookup:
    """A waybill web service with timeouts, a bounded retry and an LRU cache.

    Fresh cache entries (``ttl_s`` for found waybills, ``negative_ttl_s`` for unknown numbers) are
    answered without a request; when the service fails, a stale cached waybill is served and the
    failure counted; with nothing cached, :class:`WaybillServiceError` is raised so the caller
    fails closed.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 0.2,
        cache_size: int = 100_000,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 5.0,
        retries: int = 1,
    ) -> None:
        import httpx

        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers={"Accept": "application/json"})
        self._cache = _LruCache(cache_size)
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._retries = retries
        self.requests = 0
        self.cache_hits = 0
        self.failures = 0
        self.stale_served = 0

    def lookup(self, tracking_no: str) -> Waybill | None:
        now = time.monotonic()
        cached = self._cache.get(tracking_no)
        if cached is not None:
            value, stored = cached
            if now - stored < (self._ttl_s if value is not None else self._negative_ttl_s):
                self.cache_hits += 1
                return value
        try:
            value = self._fetch(tracking_no)
        except WaybillServiceError:
            self.failures += 1
            if cached is not None and cached[0] is not None:
                self.stale_served += 1
                logger.warning("waybill service failed; serving cached waybill %s", tracking_no)
                return cached[0]
            raise
        self._cache.put(tracking_no, value, time.monotonic())
        return value

    def _fetch(self, tracking_no: str) -> Waybill | None:
        import httpx

        url = f"{self._base}/waybills/{quote(tracking_no, safe='')}"
        deadline = time.monotonic() + self._timeout_s * (self._retries + 1)
        last: Exception | None = None
        for attempt in range(self._retries + 1):
            if attempt and time.monotonic() + self._timeout_s > deadline:
                break
            self.requests += 1
            try:
                response = self._client.get(url)
            except httpx.HTTPError as e:
                last = e
                continue
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                last = WaybillServiceError(f"waybill service answered HTTP {response.status_code}")
                if response.status_code < 500:
                    break
                continue
            try:
                return WaybillRecord.model_validate_json(response.content).to_domain()
            except ValidationError as e:
                raise WaybillServiceError(f"waybill service sent an invalid record for {tracking_no}") from e
        raise WaybillServiceError(f"waybill service unavailable: {type(last).__name__}: {last}") from last

    def close(self) -> None:
        self._client.close()


def url_path(url: str) -> Path:
    """``file://rel/path``, ``file:///abs/path``, ``sqlite:///rel/path`` and ``sqlite:////abs/path`` -> a Path."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return Path(parts.netloc + path) if parts.netloc else Path(path)
    return Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)


WaybillAdapter = TableWaybillLookup | SqliteWaybillLookup | HttpWaybillLookup
Scheme = Literal["file", "sqlite", "http", "https"]


def open_waybill_lookup(url: str, *, timeout_ms: float = 200.0, cache_size: int = 100_000) -> WaybillAdapter:
    """The adapter for a configured waybill URL."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        return TableWaybillLookup.from_file(url_path(url))
    if scheme == "sqlite":
        return SqliteWaybillLookup(url_path(url))
    if scheme in ("http", "https"):
        return HttpWaybillLookup(url, timeout_s=timeout_ms / 1000.0, cache_size=cache_size)
    raise ConfigError(f"waybill URL scheme {scheme!r} is not file, sqlite, http or https ({url!r})")
