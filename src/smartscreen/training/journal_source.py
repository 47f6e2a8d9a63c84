"""Reviewed parcels read from the audit journal (``smartscreen.journal``) for verdict export.

For every parcel whose review status is ``reviewed``: its operator verdicts (the latest one
counts) and its rendered scan from the content-addressed image store, written as a PNG into a
scratch folder so the dataset writer can read it like any other image.
"""

from __future__ import annotations

import logging
from pathlib import Path

from smartscreen.training.verdicts import ReviewedCase

logger = logging.getLogger(__name__)

PAGE = 200


def reviewed_cases_from_journal(journal_url: str, image_root: Path, scratch: Path) -> list[ReviewedCase]:
    from smartscreen.journal.images import FsImageStore
    from smartscreen.journal.journal import Journal, ParcelQuery

    journal = Journal.open(journal_url)
    store = FsImageStore(image_root)
    scratch.mkdir(parents=True, exist_ok=True)
    cases: list[ReviewedCase] = []
    try:
        offset = 0
        while True:
            records = journal.parcels(ParcelQuery(review_status="reviewed", offset=offset, limit=PAGE))
            if not records:
                break
            offset += len(records)
            for record in records:
                verdicts = journal.verdicts_for(record.parcel_id)
                if not verdicts:
                    continue
                if not record.render_sha256:
                    logger.warning("parcel %s has verdicts but no rendered scan: skipped", record.parcel_id)
                    continue
                try:
                    data = store.get(record.render_sha256)
                except KeyError:
                    logger.warning(
                        "parcel %s: scan image %s missing from %s",
                        record.parcel_id,
                        record.render_sha256[:12],
                        image_root,
                    )
                    continue
                image_path = scratch / f"{record.parcel_id}.png"
                image_path.write_bytes(data)
                for _, verdict in verdicts:
                    cases.append(ReviewedCase(record.parcel_id, image_path, verdict))
    finally:
        journal.close()
    return cases
