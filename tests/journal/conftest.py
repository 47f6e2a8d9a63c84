from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartscreen.journal import Journal

POSTGRES_URL = os.environ.get("SMARTSCREEN_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    if request.param == "sqlite":
        j = Journal.open(f"sqlite:///{tmp_path}/journal.db")
        yield j
        j.close()
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL journal tests need SMARTSCREEN_TEST_POSTGRES_URL (set by .ci/run)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    j = Journal.open(f"{POSTGRES_URL}{sep}schema={schema}")
    yield j
    j.db.execute(f'DROP SCHEMA "{schema}" CASCADE')
    j.close()
