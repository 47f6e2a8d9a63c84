"""Waybill fusion: barcode association by belt position, waybill lookup adapters and PII masking."""

from smartscreen.fusion.association import Association, BarcodeAssociator
from smartscreen.fusion.masking import log_ref, masked_waybill
from smartscreen.fusion.waybills import (
    HttpWaybillLookup,
    SqliteWaybillLookup,
    TableWaybillLookup,
    WaybillRecord,
    import_waybills,
    open_waybill_lookup,
    read_waybill_file,
)

__all__ = [
    "Association",
    "BarcodeAssociator",
    "HttpWaybillLookup",
    "SqliteWaybillLookup",
    "TableWaybillLookup",
    "WaybillRecord",
    "import_waybills",
    "log_ref",
    "masked_waybill",
    "open_waybill_lookup",
    "read_waybill_file",
]
