"""Review service parts without HTTP: passwords, roles, percentiles, IoU, fallbacks, the serve verb."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from smartscreen.review.accounts import AccountService, seed_demo_accounts
from smartscreen.review.models import Role, percentile
from smartscreen.review.passwords import PasswordPolicyError, check_password_policy, hash_password, verify_password
from smartscreen.review.tip import iou
from tests.api.conftest import Env


def test_password_hash_round_trip_and_salting() -> None:
    a, b = hash_password("a long secret 1"), hash_password("a long secret 1")
    assert a != b and a.startswith("scrypt$14$8$1$")  # fresh salt each time
    assert verify_password("a long secret 1", a) and verify_password("a long secret 1", b)
    assert not verify_password("a long secret 2", a)
    assert not verify_password("a long secret 1", "scrypt$14$8$1$zz$zz")
    assert not verify_password("a long secret 1", "md5$abc")
    assert not verify_password("a long secret 1", "scrypt$30$8$1$00$00")  # absurd cost refused, not computed


def test_password_policy() -> None:
    with pytest.raises(PasswordPolicyError, match="at least 10"):
        check_password_policy("short")
    with pytest.raises(PasswordPolicyError, match="at most"):
        check_password_policy("x" * 300)
    check_password_policy("exactly-10")


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.at_least(Role.SUPERVISOR) and Role.SUPERVISOR.at_least(Role.OPERATOR)
    assert not Role.OPERATOR.at_least(Role.SUPERVISOR)


def test_percentile_and_iou() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_sessions_expire(env: Env) -> None:
    now = [time.time_ns()]
    accounts = AccountService(env.service.db, token_ttl_s=60, clock_ns=lambda: now[0])
    result = accounts.login("op1", "correct-horse-battery")
    assert result is not None
    token, _ = result
    assert accounts.session_for(token) is not None
    now[0] += 61 * 10**9
    assert accounts.session_for(token) is None
    expired_digest = result[1].token_sha256

    def stored() -> set[str]:
        return {str(r[0]) for r in env.service.db.query("SELECT token_sha256 FROM review_sessions", ())}

    other = accounts.login("op1", "correct-horse-battery")
    assert other is not None and accounts.session_for(other[0]) is not None
    assert expired_digest not in stored()  # purged by the later login
    accounts.logout(other[1])
    assert other[1].token_sha256 in stored()
    assert accounts.login("op1", "correct-horse-battery") is not None
    assert other[1].token_sha256 not in stored()  # the revoked one went with the next login


def test_seed_demo_accounts_is_idempotent(env: Env) -> None:
    created = seed_demo_accounts(env.service.accounts, "c1")
    assert set(created) == {"operator1", "operator2", "supervisor", "admin"} - {"admin"}  # admin exists already
    role, password = created["supervisor"]
    assert role is Role.SUPERVISOR and env.service.accounts.authenticate("supervisor", password) is not None
    assert seed_demo_accounts(env.service.accounts, "c1") == {}


def test_raw_scan_without_calibration_falls_back_to_the_lines_render(env: Env) -> None:
    """The line stores raw scans without references when it has none yet; the page then shows its PNG."""
    import cv2

    from tests.api.helpers import add_parcel, rendered_scan

    buf = io.BytesIO()
    np.savez(buf, high=np.full((40, 50), 1000, np.uint16), low=np.full((40, 50), 900, np.uint16))
    raw_sha = env.service.images.put(buf.getvalue())
    ok, png = cv2.imencode(".png", rendered_scan(3).rgb[:40, :50, ::-1].copy())
    assert ok
    png_sha = env.service.images.put(bytes(png))
    add_parcel(
        env.service.journal, env.service.images, "L1-7000", entered_at_ns=time.time_ns(), scan_blob=buf.getvalue()
    )
    env.service.db.execute(
        "UPDATE journal_parcels SET raw_sha256 = ?, render_sha256 = ? WHERE parcel_id = ?",
        (raw_sha, png_sha, "L1-7000"),
    )
    r = env.client.get("/api/parcels/L1-7000/images/pseudo.png", headers=env.auth("op1"))
    assert r.status_code == 200
    image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (40, 50)
    assert np.array_equal(image, rendered_scan(3).rgb[:40, :50, ::-1])


def test_serve_verb_serves_the_page_and_seeds_demo_accounts(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "centre.yaml"
    config.write_text(
        f"""
centre: {{id: DEMO}}
lines:
  - {{id: L1, scanner: "sim://?seed=1", io_board: "sim://"}}
journal: {{url: "sqlite:///{tmp_path / "journal.db"}", image_dir: "{tmp_path / "images"}"}}
waybill: {{url: "file://{tmp_path / "waybills.csv"}"}}
api: {{host: 127.0.0.1, port: {port}}}
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartscreen", "serve", "--config", str(config), "--seed-demo-users"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        while not any("review page" in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"serve exited early: {''.join(lines)}"
            lines.append(line)
        creds = dict(re.findall(r"demo account\s+(\S+)\s+role \S+\s+password (\S+)", "".join(lines)))
        assert set(creds) == {"operator1", "operator2", "supervisor", "admin"}
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = httpx.post(
            url + "/api/auth/login", json={"username": "operator1", "password": creds["operator1"]}
        ).json()
        me = httpx.get(url + "/api/auth/me", headers={"Authorization": f"Bearer {token['token']}"}).json()
        assert (me["username"], me["centre_id"], me["role"]) == ("operator1", "DEMO", "operator")
        assert "smartscreen review" in httpx.get(url + "/").text
    finally:
        proc.terminate()
        proc.wait(10)
