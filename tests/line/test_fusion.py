from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from smartscreen.domain import BarcodeMatch, BarcodeRead, PersonalData, Waybill
from smartscreen.errors import ConfigError, WaybillServiceError
from smartscreen.fusion import (
    BarcodeAssociator,
    HttpWaybillLookup,
    SqliteWaybillLookup,
    TableWaybillLookup,
    WaybillRecord,
    import_waybills,
    log_ref,
    masked_waybill,
    open_waybill_lookup,
)
from smartscreen.fusion.service import WaybillHttpServer

DEMO = Path(__file__).parents[2] / "datasets" / "waybills" / "demo-waybills.json"

# 0.1 mm per count, reader 1500 mm upstream of the entry eye, +-150 mm window
MM = 0.1


def assoc() -> BarcodeAssociator:
    return BarcodeAssociator(barcode_to_scanner_mm=1500, window_mm=150, mm_per_count=MM)


def read(code: str, at_mm: float) -> BarcodeRead:
    return BarcodeRead(code=code, read_at_ns=0, encoder_counts=round(at_mm / MM))


def entry(at_mm: float) -> int:
    """Encoder counts when a parcel whose leading edge passed the reader at ``at_mm`` reaches the entry eye."""
    return round((at_mm + 1500) / MM)


def test_reads_follow_their_parcels_by_belt_position() -> None:
    a = assoc()
    # three parcels 500 mm long with 250 mm gaps; each read somewhere along the parcel
    for i, code in enumerate(["A1", "B2", "C3"]):
        a.add_read(read(code, i * 750 + 200))
    results = [a.associate(f"p{i}", entry(i * 750), 500) for i in range(3)]
    assert [(r.outcome, r.tracking_no) for r in results] == [
        (BarcodeMatch.MATCHED, "A1"),
        (BarcodeMatch.MATCHED, "B2"),
        (BarcodeMatch.MATCHED, "C3"),
    ]


def test_no_read_multi_read_and_repeat_reads() -> None:
    a = assoc()
    a.add_read(read("X", 10))
    a.add_read(read("X", 300))  # same label read twice: still one code
    a.add_read(read("Y", 1000))
    a.add_read(read("Z", 1100))
    assert a.associate("p0", entry(0), 400).outcome is BarcodeMatch.MATCHED
    multi = a.associate("p1", entry(900), 400)
    assert multi.outcome is BarcodeMatch.MULTI_READ and multi.codes == ("Y", "Z") and multi.tracking_no == ""
    assert a.associate("p2", entry(2000), 400).outcome is BarcodeMatch.NO_READ


def test_same_label_on_two_parcels_is_a_mismatch() -> None:
    a = assoc()
    a.add_read(read("DUP", 0))
    a.add_read(read("DUP", 1000))
    assert a.associate("p0", entry(0), 400).outcome is BarcodeMatch.MATCHED
    assert a.associate("p1", entry(1000), 400).outcome is BarcodeMatch.MISMATCH


def test_read_inside_parcel_taken_by_another_is_a_mismatch() -> None:
    a = assoc()
    a.add_read(read("M", 450))
    # a long parcel claims the read within its window ...
    assert a.associate("long", entry(0), 400).outcome is BarcodeMatch.MATCHED
    # ... but it lies inside the next parcel's own extent (merged/touching parcels)
    assert a.associate("next", entry(420), 400).outcome is BarcodeMatch.MISMATCH


def test_old_unclaimed_reads_expire_as_orphans() -> None:
    a = BarcodeAssociator(barcode_to_scanner_mm=1500, window_mm=150, mm_per_count=MM, horizon_mm=5000)
    a.add_read(read("LOST", 0))
    a.associate("p", entry(10_000), 400)
    assert a.orphan_reads == 1 and a.pending == 0


def test_demo_table_loads_and_masks() -> None:
    table = TableWaybillLookup.from_file(DEMO)
    assert len(table) == 600
    first = json.loads(DEMO.read_text(encoding="utf-8"))["waybills"][0]
    wb = table.lookup(first["tracking_no"])
    assert wb is not None and wb.pii.sender_name == first["pii"]["sender_name"]
    masked = masked_waybill(wb)
    assert masked.pii.sender_phone.endswith(first["pii"]["sender_phone"][-4:])
    assert first["pii"]["sender_phone"] not in masked.pii.sender_phone
    assert masked.pii.sender_name[0] == first["pii"]["sender_name"][0] and "*" in masked.pii.sender_name
    assert table.lookup("NOPE") is None
    assert first["pii"]["sender_name"] not in repr(wb) and first["pii"]["sender_name"] not in log_ref(wb)


def test_csv_and_sqlite_adapters(tmp_path: Path) -> None:
    csv_path = tmp_path / "w.csv"
    csv_path.write_text(
        "tracking_no,carrier_code,declared_items,declared_weight_g,dims_mm,real_name_verified,sender_name,sender_phone\n"
        "JD0001,JD,clothes|apparel|2|99.5;book|printed,1200,300x200x100,,李雷,13912345678\n"
        "JD0002,JD,,,,false,,\n",
        encoding="utf-8",
    )
    table = TableWaybillLookup.from_file(csv_path)
    wb = table.lookup("JD0001")
    assert wb is not None and wb.declared_weight_g == 1200 and wb.dims_mm == (300, 200, 100)
    assert [(i.name, i.quantity) for i in wb.declared_items] == [("clothes", 2), ("book", 1)]
    assert wb.real_name_verified and wb.pii.sender_phone == "13912345678"
    wb2 = table.lookup("JD0002")
    assert wb2 is not None and not wb2.real_name_verified
    db = tmp_path / "w.db"
    assert import_waybills(csv_path, db) == 2
    lookup = open_waybill_lookup(f"sqlite:///{db}")
    assert isinstance(lookup, SqliteWaybillLookup)
    assert lookup.lookup("JD0001") == wb and lookup.lookup("X") is None
    lookup.close()


def test_bad_files_say_what_is_wrong(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"tracking_no": ""}]', encoding="utf-8")
    with pytest.raises(ConfigError, match="waybill #0"):
        TableWaybillLookup.from_file(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        TableWaybillLookup.from_file(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="does not exist"):
        SqliteWaybillLookup(tmp_path / "none.db")


def sample(n: int = 3) -> list[WaybillRecord]:
    return [
        WaybillRecord.from_domain(
            Waybill(tracking_no=f"T{i}", carrier_code="SF", pii=PersonalData(recipient_name="韩梅梅"))
        )
        for i in range(n)
    ]


def test_http_lookup_caches_and_survives_outage(caplog: pytest.LogCaptureFixture) -> None:
    with WaybillHttpServer(sample()) as server:
        lookup = HttpWaybillLookup(server.url, timeout_s=0.5, ttl_s=0.0)
        wb = lookup.lookup("T1")
        assert wb is not None and wb.pii.recipient_name == "韩梅梅"
        assert lookup.lookup("T9") is None
        server.fail_status = 503
        caplog.set_level(logging.DEBUG)
        # expired but cached: served stale while the service is down
        assert lookup.lookup("T1") == wb and lookup.stale_served == 1
        with pytest.raises(WaybillServiceError, match="503"):
            lookup.lookup("T2")
        assert "韩梅梅" not in caplog.text
        lookup.close()


def test_http_lookup_times_out_on_a_stalled_service() -> None:
    with WaybillHttpServer(sample()) as server:
        server.delay_s = 1.0
        lookup = HttpWaybillLookup(server.url, timeout_s=0.1, retries=1)
        with pytest.raises(WaybillServiceError, match="unavailable"):
            lookup.lookup("T0")
        assert lookup.failures == 1
        lookup.close()


def test_http_lookup_service_down() -> None:
    with WaybillHttpServer(sample()) as server:
        url = server.url
    lookup = HttpWaybillLookup(url, timeout_s=0.2)
    with pytest.raises(WaybillServiceError):
        lookup.lookup("T0")
    fresh = HttpWaybillLookup(url, timeout_s=0.2, ttl_s=60)
    assert fresh.requests == 0
    lookup.close()
    fresh.close()
