"""The review API on a real PostgreSQL server (same code as SQLite; SMARTSCREEN_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Env, make_env

pytestmark = pytest.mark.postgres
POSTGRES_URL = os.environ.get("SMARTSCREEN_TEST_POSTGRES_URL", "")


@pytest.fixture
def pg_env(tmp_path: Path) -> Iterator[Env]:
    if not POSTGRES_URL:
        pytest.skip("SMARTSCREEN_TEST_POSTGRES_URL is not set (.ci/run sets it to the local PostgreSQL server)")
    import psycopg

    schema = f"review_test_{uuid.uuid4().hex[:12]}"  # one schema per test: runs never collide
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield from make_env(tmp_path, f"{POSTGRES_URL}{separator}schema={schema}")
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_review_flow_on_postgresql(pg_env: Env) -> None:
    env = pg_env
    assert env.service.db.dialect.value == "postgresql"
    queue = env.client.get("/api/queue", headers=env.auth("op1")).json()
    assert [i["case_id"] for i in queue["items"]] == env.parcels
    assert env.client.get(f"/api/parcels/{env.parcels[0]}", headers=env.auth("opb")).status_code == 404
    url = f"/api/parcels/{env.parcels[0]}/verdicts"
    first = env.client.post(url, json={"kind": "false_alarm", "expected_last_seq": 0}, headers=env.auth("op1")).json()
    stale = env.client.post(url, json={"kind": "needs_opening", "expected_last_seq": 0}, headers=env.auth("op2"))
    assert stale.status_code == 409
    box = {"class_name": "knife", "x1": 20, "y1": 30, "x2": 60, "y2": 70}
    second = env.client.post(
        url,
        json={"kind": "threat_confirmed", "boxes": [box], "expected_last_seq": first["verdict"]["seq"]},
        headers=env.auth("op2"),
    ).json()
    assert second["verdict"]["supersedes_seq"] == first["verdict"]["seq"]
    stored = env.service.journal.verdicts_for(env.parcels[0])
    assert [(v.operator_id, v.kind.value) for _, v in stored] == [("op1", "false_alarm"), ("op2", "threat_confirmed")]
    lines = {r["line_id"]: r for r in env.client.get("/api/stats/lines", headers=env.auth("sup1")).json()}
    assert lines["L1"]["threat_confirmed"] == 1 and lines["L1"]["reviewed"] == 1
    ops = {
        r["operator_id"]: r["verdicts"] for r in env.client.get("/api/stats/operators", headers=env.auth("sup1")).json()
    }
    assert ops == {"op1": 1, "op2": 1}
    # TIP settings upsert and a projected case on PostgreSQL
    for p in (0.0, 0.25):
        r = env.client.put("/api/tip/operators/op1", json={"enabled": True, "probability": p}, headers=env.auth("sup1"))
        assert r.status_code == 200
    assert env.service.tip.settings("op1").probability == 0.25
    case = env.client.post("/api/tip/operators/op1/project", json={}, headers=env.auth("sup1")).json()
    out = env.client.post(
        f"/api/parcels/{case['case_id']}/verdicts", json={"kind": "false_alarm"}, headers=env.auth("op1")
    )
    assert out.json()["tip"]["outcome"] == "miss"
    assert (
        env.client.get(f"/api/parcels/{env.parcels[0]}/images/pseudo.png", headers=env.auth("op1")).status_code == 200
    )
    assert env.client.post("/api/auth/logout", headers=env.auth("op1")).status_code == 204
    assert env.client.get("/api/queue", headers=env.auth("op1")).status_code == 401
