from __future__ import annotations

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
from tests.api.helpers import add_parcel

PASSWORD = "correct-horse-battery"


@dataclass
class Env:
    client: TestClient
    service: ReviewService
    tokens: dict[str, str]
    parcels: list[str]
    tmp: Path

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def make_env(tmp_path: Path, journal_url: str, **app_options: object) -> Iterator[Env]:
    settings = ApiConfig(max_body_bytes=4096, max_page_size=20)
    app = create_app(settings, journal_url, tmp_path / "images", **app_options)  # type: ignore[arg-type]
    service: ReviewService = app.state.smartscreen.service
    users = {
        "op1": ("c1", Role.OPERATOR),
        "op2": ("c1", Role.OPERATOR),
        "opb": ("c2", Role.OPERATOR),
        "sup1": ("c1", Role.SUPERVISOR),
        "supb": ("c2", Role.SUPERVISOR),
        "admin": ("c1", Role.ADMIN),
    }
    for name, (centre, role) in users.items():
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
        )
        parcels.append(pid)
    add_parcel(service.journal, service.images, "X1-1", centre_id="c2", line_id="X1", entered_at_ns=now - 50 * 10**9)
    add_parcel(service.journal, service.images, "L1-2000", entered_at_ns=now - 200 * 10**9, route=Route.CLEAR)
    with TestClient(app) as client:
        tokens = {}
        for name in users:
            r = client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            tokens[name] = r.json()["token"]
        yield Env(client, service, tokens, parcels, tmp_path)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path, f"sqlite:///{tmp_path}/journal.db")
