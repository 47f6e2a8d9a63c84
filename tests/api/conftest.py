from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smartscreen.api import create_app
from smartscreen.config import ApiConfig
from smartscreen.domain.decision import Route
from smartscreen.review.models import Role
from smartscreen.review.service import ReviewService
from tests.api.helpers import add_parcel, raw_scan_blob

PASSWORD = "correct-horse-battery"
USERS = {
    "op1": ("c1", Role.OPERATOR),
    "op2": ("c1", Role.OPERATOR),
    "opb": ("c2", Role.OPERATOR),
    "sup1": ("c1", Role.SUPERVISOR),
    "supb": ("c2", Role.SUPERVISOR),
    "admin": ("c1", Role.ADMIN),
}
SETTINGS = ApiConfig(max_body_bytes=4096, max_page_size=20)


@dataclass
class Env:
    client: TestClient
    service: ReviewService
    tokens: dict[str, str]
    parcels: list[str]
    tmp: Path

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


@dataclass(frozen=True)
class Seeded:
    tokens: dict[str, str]
    parcels: list[str]


def seed(service: ReviewService) -> Seeded:
    """Accounts of two centres, four pending alarms on two lines of c1, one cleared parcel, one parcel of c2."""
    for name, (centre, role) in USERS.items():
        service.accounts.create(name, PASSWORD, centre_id=centre, role=role)
    now = time.time_ns()
    parcels = []
    for i in range(4):
        pid = f"L{1 + i % 2}-{1000 + i}"
        add_parcel(
            service.journal,
            service.images,
            pid,
            line_id=f"L{1 + i % 2}",
            entered_at_ns=now - (100 - i) * 10**9,
            class_name="knife" if i % 2 == 0 else "gun",
            scan_blob=raw_scan_blob(i) if i < 3 else None,  # the last one stores a rendered scan instead
        )
        parcels.append(pid)
    add_parcel(service.journal, service.images, "X1-1", centre_id="c2", line_id="X1", entered_at_ns=now - 50 * 10**9)
    add_parcel(
        service.journal,
        service.images,
        "L1-2000",
        entered_at_ns=now - 200 * 10**9,
        route=Route.CLEAR,
        scan_blob=raw_scan_blob(10, threat=False),
    )
    tokens = {}
    for name in USERS:
        result = service.accounts.login(name, PASSWORD)
        assert result is not None
        tokens[name] = result[0]
    return Seeded(tokens, parcels)


def make_env(tmp_path: Path, journal_url: str, **app_options: object) -> Iterator[Env]:
    """A freshly seeded app on ``journal_url`` (used for PostgreSQL)."""
    app = create_app(SETTINGS, journal_url, tmp_path / "images", **app_options)  # type: ignore[arg-type]
    service: ReviewService = app.state.smartscreen.service
    seeded = seed(service)
    with TestClient(app) as client:
        yield Env(client, service, seeded.tokens, seeded.parcels, tmp_path)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """Seeded once per session (password hashing is deliberately slow); each test gets a copy."""
    root = tmp_path_factory.mktemp("review-template")
    service = ReviewService.open(f"sqlite:///{root}/journal.db", root / "images")
    seeded = seed(service)
    service.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    service.close()
    return root, seeded


@pytest.fixture
def env(tmp_path: Path, template: tuple[Path, Seeded]) -> Iterator[Env]:
    root, seeded = template
    work = tmp_path / "db"
    shutil.copytree(root, work)
    app = create_app(SETTINGS, f"sqlite:///{work}/journal.db", work / "images")
    with TestClient(app) as client:
        yield Env(client, app.state.smartscreen.service, dict(seeded.tokens), list(seeded.parcels), tmp_path)
