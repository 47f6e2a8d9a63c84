"""Every route: the happy path, and unauthorised / wrong-role / wrong-centre / malformed requests."""

from __future__ import annotations

import pytest

from smartscreen.domain.events import VerdictKind
from tests.api.conftest import PASSWORD, Env
from tests.api.helpers import SECRET_NAME, SECRET_PHONE


def _state(env: Env) -> tuple[int, int, list[tuple[object, ...]]]:
    """What a rejected request must not change: journal events, verdict rows, accounts, TIP settings."""
    db = env.service.db
    return (
        env.service.journal.event_count(),
        int(db.query("SELECT COUNT(*) FROM review_verdicts")[0][0]),
        db.query("SELECT username, role, disabled, password_hash FROM review_accounts ORDER BY username")
        + db.query("SELECT username, enabled, probability FROM review_tip_settings ORDER BY username"),
    )


def test_health_needs_no_token(env: Env) -> None:
    r = env.client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


# (method, path, body) for every authenticated route; {p} is a parcel of centre c1
ROUTES = [
    ("GET", "/api/auth/me", None),
    ("POST", "/api/auth/password", {"current_password": PASSWORD, "new_password": "another-long-one"}),
    ("POST", "/api/auth/logout", None),
    ("GET", "/api/accounts", None),
    (
        "POST",
        "/api/accounts",
        {"username": "newbie", "password": "long-enough-pw", "role": "operator", "centre_id": "c1"},
    ),
    ("PATCH", "/api/accounts/op2", {"disabled": True}),
    ("GET", "/api/queue", None),
    ("GET", "/api/parcels/{p}", None),
    ("GET", "/api/parcels/{p}/verdicts", None),
    ("POST", "/api/parcels/{p}/verdicts", {"kind": "false_alarm"}),
    ("GET", "/api/parcels/{p}/images/pseudo.png", None),
    ("GET", "/api/parcels/{p}/dicos", None),
    ("GET", "/api/stats/operators", None),
    ("GET", "/api/stats/lines", None),
    ("GET", "/api/tip/operators", None),
    ("PUT", "/api/tip/operators/op1", {"enabled": True, "probability": 0.5}),
    ("POST", "/api/tip/operators/op1/project", {}),
    ("GET", "/api/tip/report", None),
    ("GET", "/metrics", None),
    ("GET", "/api/openapi.json", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("token", [None, "garbage-token", "revoked"])
def test_every_route_rejects_missing_or_bad_tokens(
    env: Env, method: str, path: str, body: object, token: str | None
) -> None:
    if token == "revoked":
        env.client.post("/api/auth/logout", headers=env.auth("sup1"))  # revoked
        headers = env.auth("sup1")
    else:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    before = _state(env)
    r = env.client.request(method, path.format(p=env.parcels[0]), json=body, headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert _state(env) == before


WRONG_ROLE = [
    ("operator", "GET", "/api/accounts", None),
    ("operator", "POST", "/api/accounts", ROUTES[3][2]),
    ("supervisor", "POST", "/api/accounts", ROUTES[3][2]),
    ("supervisor", "PATCH", "/api/accounts/op2", {"disabled": True}),
    ("operator", "GET", "/api/parcels/{p}/dicos", None),
    ("operator", "GET", "/api/stats/lines", None),
    ("operator", "GET", "/api/tip/operators", None),
    ("operator", "PUT", "/api/tip/operators/op1", {"enabled": True, "probability": 1.0}),
    ("operator", "PUT", "/api/tip/operators/op2", {"enabled": True, "probability": 1.0}),
    ("operator", "POST", "/api/tip/operators/op1/project", {}),
    ("operator", "GET", "/api/tip/report", None),
]


@pytest.mark.parametrize(("role", "method", "path", "body"), WRONG_ROLE)
def test_wrong_role_gets_403_and_changes_nothing(env: Env, role: str, method: str, path: str, body: object) -> None:
    user = {"operator": "op1", "supervisor": "sup1"}[role]
    before = _state(env)
    r = env.client.request(method, path.format(p=env.parcels[0]), json=body, headers=env.auth(user))
    assert r.status_code == 403, r.text
    assert "role" in r.json()["detail"]
    assert _state(env) == before


WRONG_CENTRE = [
    ("opb", "GET", "/api/parcels/{p}", None),
    ("opb", "GET", "/api/parcels/{p}/verdicts", None),
    ("opb", "POST", "/api/parcels/{p}/verdicts", {"kind": "false_alarm"}),
    ("opb", "GET", "/api/parcels/{p}/images/pseudo.png", None),
    ("opb", "GET", "/api/parcels/{p}/images/boxes.png", None),
    ("supb", "GET", "/api/parcels/{p}/dicos", None),
    ("supb", "PUT", "/api/tip/operators/op1", {"enabled": True, "probability": 1.0}),
    ("supb", "POST", "/api/tip/operators/op1/project", {}),
]


@pytest.mark.parametrize(("user", "method", "path", "body"), WRONG_CENTRE)
def test_other_centre_gets_404_and_changes_nothing(env: Env, user: str, method: str, path: str, body: object) -> None:
    before = _state(env)
    r = env.client.request(method, path.format(p=env.parcels[0]), json=body, headers=env.auth(user))
    assert r.status_code == 404, r.text
    assert _state(env) == before


def test_other_centre_parcels_never_in_queue(env: Env) -> None:
    mine = env.client.get("/api/queue", params={"status": "all"}, headers=env.auth("op1")).json()
    theirs = env.client.get("/api/queue", params={"status": "all"}, headers=env.auth("opb")).json()
    assert {i["case_id"] for i in mine["items"]} == {*env.parcels, "L1-2000"}
    assert [i["case_id"] for i in theirs["items"]] == ["X1-1"]
    assert theirs["total"] == 1


MALFORMED = [
    ("POST", "/api/auth/login", {"username": "op1"}, 422),
    ("POST", "/api/auth/password", {"current_password": "wrong-one!", "new_password": "another-long-one"}, 403),
    ("POST", "/api/auth/password", {"current_password": PASSWORD, "new_password": "short"}, 422),
    ("POST", "/api/auth/login", {"username": "op1", "password": "x", "extra": 1}, 422),
    (
        "POST",
        "/api/accounts",
        {"username": "Bad Name", "password": "long-enough-pw", "role": "operator", "centre_id": "c1"},
        422,
    ),
    ("POST", "/api/accounts", {"username": "shorty", "password": "short", "role": "operator", "centre_id": "c1"}, 422),
    (
        "POST",
        "/api/accounts",
        {"username": "newbie", "password": "long-enough-pw", "role": "king", "centre_id": "c1"},
        422,
    ),
    (
        "POST",
        "/api/accounts",
        {"username": "op2", "password": "long-enough-pw", "role": "operator", "centre_id": "c1"},
        409,
    ),
    ("PATCH", "/api/accounts/nobody", {"disabled": True}, 404),
    ("PATCH", "/api/accounts/admin", {"disabled": True}, 409),
    ("PATCH", "/api/accounts/op2", {"password": "short"}, 422),
    ("GET", "/api/queue?limit=21", None, 422),
    ("GET", "/api/queue?limit=0", None, 422),
    ("GET", "/api/queue?offset=-1", None, 422),
    ("GET", "/api/queue?class=bazooka", None, 422),
    ("GET", "/api/queue?status=done", None, 422),
    ("GET", "/api/queue?line=L1;DROP", None, 422),
    ("GET", "/api/parcels/no such parcel", None, 422),
    ("GET", "/api/parcels/L1-9999", None, 404),
    ("POST", "/api/parcels/{p}/verdicts", {"kind": "maybe"}, 422),
    ("POST", "/api/parcels/{p}/verdicts", {}, 422),
    (
        "POST",
        "/api/parcels/{p}/verdicts",
        {"kind": "threat_confirmed", "boxes": [{"class_name": "bazooka", "x1": 1, "y1": 1, "x2": 5, "y2": 5}]},
        422,
    ),
    (
        "POST",
        "/api/parcels/{p}/verdicts",
        {"kind": "threat_confirmed", "boxes": [{"class_name": "knife", "x1": 9, "y1": 1, "x2": 5, "y2": 5}]},
        422,
    ),
    (
        "POST",
        "/api/parcels/{p}/verdicts",
        {"kind": "threat_confirmed", "boxes": [{"class_name": "knife", "x1": -1, "y1": 1, "x2": 5, "y2": 5}]},
        422,
    ),
    ("POST", "/api/parcels/{p}/verdicts", {"kind": "false_alarm", "expected_last_seq": -3}, 422),
    ("POST", "/api/parcels/{p}/verdicts", {"kind": "false_alarm", "expected_last_seq": 99999}, 409),
    ("POST", "/api/parcels/{p}/verdicts", {"kind": "false_alarm", "operator_id": "someone-else"}, 422),
    ("POST", "/api/parcels/{p}/verdicts", "not json", 422),
    ("GET", "/api/parcels/{p}/images/xray.png", None, 422),
    ("GET", "/api/parcels/{p}/images/pseudo.jpg", None, 404),
    ("GET", "/api/parcels/..%2F..%2Fetc%2Fpasswd/images/pseudo.png", None, 404),
    ("GET", "/api/parcels/{p}/images/..%2F..%2Fjournal.db", None, 404),
    ("GET", "/static/..%2F..%2Fapp.py", None, 404),
    ("GET", "/static/%2Fetc%2Fpasswd", None, 404),
    ("GET", "/api/stats/operators?since_ns=-5", None, 422),
    ("PUT", "/api/tip/operators/op1", {"enabled": True, "probability": 1.5}, 422),
    ("PUT", "/api/tip/operators/op1", {"enabled": "sometimes", "probability": 0.5}, 422),
    ("PUT", "/api/tip/operators/sup1", {"enabled": True, "probability": 0.5}, 422),
    ("PUT", "/api/tip/operators/nobody", {"enabled": True, "probability": 0.5}, 404),
    ("POST", "/api/tip/operators/op1/project", {"threat_class": "bazooka"}, 422),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MALFORMED)
def test_malformed_requests_get_clear_4xx_and_change_nothing(
    env: Env, method: str, path: str, body: object, expected: int
) -> None:
    user = "admin" if "accounts" in path else ("sup1" if "tip" in path else "op1")
    before = _state(env)
    url = path.format(p=env.parcels[0])
    if isinstance(body, str):
        r = env.client.request(
            method, url, content=body, headers={**env.auth(user), "Content-Type": "application/json"}
        )
    else:
        r = env.client.request(method, url, json=body, headers=env.auth(user))
    assert r.status_code == expected, r.text
    assert r.json()["detail"]  # every error says what is wrong
    assert _state(env) == before


@pytest.mark.parametrize(
    ("path", "user"),
    [("/api/auth/login", None), ("/api/parcels/{p}/verdicts", "op1"), ("/api/accounts", "admin")],
)
def test_oversized_bodies_get_413_and_change_nothing(env: Env, path: str, user: str | None) -> None:
    before = _state(env)
    headers = env.auth(user) if user else {}
    big = {"kind": "false_alarm", "comment": "x" * 10_000}
    r = env.client.post(path.format(p=env.parcels[0]), json=big, headers=headers)
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(10):
            yield b"x" * 1000

    r = env.client.post(
        path.format(p=env.parcels[0]), content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert _state(env) == before


def test_login_logout_me(env: Env) -> None:
    r = env.client.post("/api/auth/login", json={"username": "op1", "password": "wrong-password"})
    assert r.status_code == 401
    r = env.client.post("/api/auth/login", json={"username": "ghost", "password": PASSWORD})
    assert r.status_code == 401
    me = env.client.get("/api/auth/me", headers=env.auth("op1")).json()
    assert (me["username"], me["role"], me["centre_id"]) == ("op1", "operator", "c1")
    assert "password" not in str(me) and "hash" not in str(me)
    assert env.client.post("/api/auth/logout", headers=env.auth("op1")).status_code == 204
    assert env.client.get("/api/auth/me", headers=env.auth("op1")).status_code == 401


def test_password_change_ends_every_session(env: Env) -> None:
    other = env.client.post("/api/auth/login", json={"username": "op2", "password": PASSWORD}).json()["token"]
    body = {"current_password": PASSWORD, "new_password": "another-long-one"}
    assert env.client.post("/api/auth/password", json=body, headers=env.auth("op2")).status_code == 204
    assert env.client.get("/api/auth/me", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    assert env.client.post("/api/auth/login", json={"username": "op2", "password": PASSWORD}).status_code == 401
    assert (
        env.client.post("/api/auth/login", json={"username": "op2", "password": "another-long-one"}).status_code == 200
    )


def test_repeated_failed_logins_lock_the_account_for_a_while(env: Env) -> None:
    for _ in range(5):
        assert (
            env.client.post("/api/auth/login", json={"username": "op2", "password": "wrong-wrong"}).status_code == 401
        )
    r = env.client.post("/api/auth/login", json={"username": "op2", "password": PASSWORD})
    assert r.status_code == 429


def test_passwords_are_stored_hashed(env: Env) -> None:
    rows = env.service.db.query("SELECT password_hash FROM review_accounts")
    assert rows and all(str(h).startswith("scrypt$") and PASSWORD not in str(h) for (h,) in rows)
    tokens = env.service.db.query("SELECT token_sha256 FROM review_sessions")
    assert all(t not in env.tokens.values() for (t,) in tokens)  # only digests of tokens are stored


def test_admin_manages_accounts(env: Env) -> None:
    body = {"username": "newbie", "password": "long-enough-pw", "role": "operator", "centre_id": "c2"}
    r = env.client.post("/api/accounts", json=body, headers=env.auth("admin"))
    assert r.status_code == 201
    assert r.json()["centre_id"] == "c2"
    login = env.client.post("/api/auth/login", json={"username": "newbie", "password": "long-enough-pw"})
    assert login.status_code == 200
    token = {"Authorization": f"Bearer {login.json()['token']}"}
    assert [i["case_id"] for i in env.client.get("/api/queue", headers=token).json()["items"]] == ["X1-1"]
    names = [a["username"] for a in env.client.get("/api/accounts", headers=env.auth("admin")).json()]
    assert "newbie" in names
    r = env.client.patch("/api/accounts/newbie", json={"disabled": True}, headers=env.auth("admin"))
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert env.client.get("/api/auth/me", headers=token).status_code == 401  # disabled: its tokens stop working
    assert (
        env.client.post("/api/auth/login", json={"username": "newbie", "password": "long-enough-pw"}).status_code == 401
    )


def test_queue_oldest_first_with_filters_and_paging(env: Env) -> None:
    q = env.client.get("/api/queue", headers=env.auth("op1")).json()
    ids = [i["case_id"] for i in q["items"]]
    assert ids == env.parcels  # pending alarms, oldest first; the cleared parcel is not in the queue
    assert all(i["waited_s"] > 90 for i in q["items"])
    assert q["items"][0]["waited_s"] > q["items"][-1]["waited_s"]
    only_l2 = env.client.get("/api/queue", params={"line": "L2"}, headers=env.auth("op1")).json()
    assert [i["line_id"] for i in only_l2["items"]] == ["L2", "L2"]
    guns = env.client.get("/api/queue", params={"class": "gun"}, headers=env.auth("op1")).json()
    assert {i["case_id"] for i in guns["items"]} == {env.parcels[1], env.parcels[3]}
    page2 = env.client.get("/api/queue", params={"limit": 2, "offset": 2}, headers=env.auth("op1")).json()
    assert [i["case_id"] for i in page2["items"]] == env.parcels[2:]
    assert page2["total"] == 4
    env.client.post(f"/api/parcels/{env.parcels[0]}/verdicts", json={"kind": "false_alarm"}, headers=env.auth("op1"))
    pending = env.client.get("/api/queue", headers=env.auth("op1")).json()
    reviewed = env.client.get("/api/queue", params={"status": "reviewed"}, headers=env.auth("op1")).json()
    assert env.parcels[0] not in [i["case_id"] for i in pending["items"]]
    assert [(i["case_id"], i["last_verdict"]) for i in reviewed["items"]] == [(env.parcels[0], "false_alarm")]


def test_case_has_everything_with_personal_data_masked(env: Env) -> None:
    r = env.client.get(f"/api/parcels/{env.parcels[0]}", headers=env.auth("op1"))
    assert r.status_code == 200
    case = r.json()
    assert case["detections"][0]["class_name"] == "knife"
    assert case["reasons"][0]["code"] == "prohibited_item"
    assert case["route"] == "reject" and case["gate_status"] == "acknowledged"
    assert case["timings"]["decision_latency_ms"] == pytest.approx(300.0)
    assert case["waybill"]["declared_items"][0]["name"] == "clothes"
    assert SECRET_PHONE not in r.text and SECRET_NAME not in r.text
    assert case["waybill"]["sender_phone"].endswith("5678")
    assert case["waybill"]["sender_name"].startswith("Z") and "*" in case["waybill"]["sender_name"]
    assert set(case["images"]) == {"pseudo", "high", "low", "material", "boxes"}


def test_verdicts_are_append_only_with_who_and_when(env: Env) -> None:
    pid = env.parcels[1]
    url = f"/api/parcels/{pid}/verdicts"
    env.client.get(f"/api/parcels/{pid}", headers=env.auth("op1"))  # opened: response time is measured from here
    first = env.client.post(url, json={"kind": "false_alarm", "expected_last_seq": 0}, headers=env.auth("op1"))
    assert first.status_code == 201
    v1 = first.json()["verdict"]
    assert v1["operator_id"] == "op1" and v1["kind"] == "false_alarm" and v1["supersedes_seq"] is None
    assert v1["response_ms"] is not None and v1["response_ms"] >= 0
    # a stale correction (based on "no verdict yet") is refused: nothing is overwritten silently
    stale = env.client.post(url, json={"kind": "needs_opening", "expected_last_seq": 0}, headers=env.auth("op2"))
    assert stale.status_code == 409
    box = {"class_name": "gun", "x1": 10, "y1": 12, "x2": 40, "y2": 44}
    second = env.client.post(
        url,
        json={"kind": "threat_confirmed", "boxes": [box], "expected_last_seq": v1["seq"], "comment": "grip visible"},
        headers=env.auth("sup1"),
    )
    assert second.status_code == 201
    v2 = second.json()["verdict"]
    assert v2["supersedes_seq"] == v1["seq"] and v2["operator_id"] == "sup1"
    history = env.client.get(url, headers=env.auth("op2")).json()
    assert [(h["seq"], h["kind"], h["operator_id"]) for h in history] == [
        (v1["seq"], "false_alarm", "op1"),
        (v2["seq"], "threat_confirmed", "sup1"),
    ]
    journal = env.service.journal.verdicts_for(pid)
    assert [(v.kind, v.operator_id, v.supersedes_id) for _, v in journal] == [
        (VerdictKind.FALSE_ALARM, "op1", None),
        (VerdictKind.THREAT_CONFIRMED, "sup1", v1["seq"]),
    ]
    assert journal[1][1].boxes[0].class_name == "gun" and journal[1][1].comment == "grip visible"
    assert journal[0][1].at_ns < journal[1][1].at_ns


def test_stats_per_operator_and_line(env: Env) -> None:
    for pid, kind, user in [
        (env.parcels[0], "threat_confirmed", "op1"),
        (env.parcels[1], "false_alarm", "op1"),
        (env.parcels[2], "needs_opening", "op2"),
    ]:
        assert (
            env.client.post(f"/api/parcels/{pid}/verdicts", json={"kind": kind}, headers=env.auth(user)).status_code
            == 201
        )
    ops = {r["operator_id"]: r for r in env.client.get("/api/stats/operators", headers=env.auth("sup1")).json()}
    assert (ops["op1"]["verdicts"], ops["op1"]["threat_confirmed"], ops["op1"]["false_alarm"]) == (2, 1, 1)
    assert ops["op2"]["needs_opening"] == 1
    own = env.client.get("/api/stats/operators", headers=env.auth("op2")).json()
    assert [r["operator_id"] for r in own] == ["op2"]  # operators see their own row only
    lines = {r["line_id"]: r for r in env.client.get("/api/stats/lines", headers=env.auth("sup1")).json()}
    assert lines["L1"]["parcels"] == 3 and lines["L1"]["alarms"] == 2
    assert (lines["L1"]["reviewed"], lines["L1"]["pending_review"]) == (2, 0)
    assert (lines["L2"]["reviewed"], lines["L2"]["pending_review"], lines["L2"]["false_alarm"]) == (1, 1, 1)
    theirs = env.client.get("/api/stats/lines", headers=env.auth("supb")).json()
    assert [r["line_id"] for r in theirs] == ["X1"]  # nothing of c1 leaks to c2


def test_metrics_count_requests_and_verdicts(env: Env) -> None:
    env.client.post(f"/api/parcels/{env.parcels[0]}/verdicts", json={"kind": "false_alarm"}, headers=env.auth("op1"))
    env.client.get("/api/queue", headers=env.auth("op1"))
    text = env.client.get("/metrics", headers=env.auth("sup1")).text
    assert 'smartscreen_review_verdicts_total{kind="false_alarm"} 1.0' in text
    assert 'smartscreen_api_requests_total{method="GET",route="/api/queue",status="200"} 1.0' in text


def test_openapi_schema_needs_a_token_and_lists_every_resource(env: Env) -> None:
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert env.client.get(path).status_code == 404
    schema = env.client.get("/api/openapi.json", headers=env.auth("op1")).json()
    tags = {tag for op in schema["paths"].values() for method in op.values() for tag in method.get("tags", [])}
    assert tags >= {"auth", "accounts", "queue", "parcels", "verdicts", "images", "exports", "stats", "tip", "health"}


def test_web_page_and_static_files(env: Env) -> None:
    page = env.client.get("/")
    assert page.status_code == 200 and "smartscreen review" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    js = env.client.get("/static/app.js")
    assert js.status_code == 200 and "threat_confirmed" in js.text
    assert env.client.get("/static/app.css").status_code == 200
    assert env.client.get("/static/index.html").status_code == 404
