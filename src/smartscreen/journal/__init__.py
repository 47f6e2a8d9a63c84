"""Audit journal (append-only events + per-parcel projection) and the content-addressed image store."""

from smartscreen.journal.db import Database, Dialect
from smartscreen.journal.images import FsImageStore
from smartscreen.journal.journal import Journal, ParcelQuery, ParcelRecord

__all__ = ["Database", "Dialect", "FsImageStore", "Journal", "ParcelQuery", "ParcelRecord"]
