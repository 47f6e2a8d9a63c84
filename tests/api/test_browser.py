"""The operator page in a real browser (Debian's chromium driven by Playwright): log in, review three
parcels by keyboard, and find the verdicts in the journal."""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from smartscreen.domain.events import VerdictKind
from tests.api.conftest import PASSWORD, Env

if TYPE_CHECKING:
    from playwright.sync_api import Route

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
]


@pytest.fixture
def served(env: Env) -> Iterator[tuple[str, Env]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(env.client.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{port}", env
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_review_three_parcels_by_keyboard(served: tuple[str, Env], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, env = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(url + "/")
            page.fill("#username", "op1")
            page.fill("#password", PASSWORD)
            page.press("#password", "Enter")
            try:
                expect(page.locator("#queue li")).to_have_count(4)
            except AssertionError:
                page.screenshot(path=str(tmp_path / "failed.png"))
                raise AssertionError(f"queue did not load; errors: {errors}, console: {console}") from None
            expect(page.locator("#case-head")).to_contain_text(env.parcels[0])
            expect(page.locator("#keys")).to_contain_text("false alarm")
            expect(page.locator("#queue li").first.locator(".wait")).to_contain_text("m")  # waited > 1 minute
            expect(page.locator("#img-base")).to_have_attribute("src", re.compile(r"^blob:"))
            page.keyboard.press("m")  # material layer
            expect(page.locator("#case-head")).to_contain_text("layer: material")
            page.keyboard.press("p")
            page.screenshot(path=str(tmp_path / "review.png"))
            # parcel 1: threat confirmed; parcel 2: skip with J then back with K, false alarm; parcel 3: needs opening
            page.keyboard.press("1")
            expect(page.locator("#queue li")).to_have_count(3)
            expect(page.locator("#case-head")).to_contain_text(env.parcels[1])
            page.keyboard.press("j")
            expect(page.locator("#case-head")).to_contain_text(env.parcels[2])
            page.keyboard.press("k")
            expect(page.locator("#case-head")).to_contain_text(env.parcels[1])
            page.keyboard.press("2")
            expect(page.locator("#queue li")).to_have_count(2)
            expect(page.locator("#case-head")).to_contain_text(env.parcels[2])
            page.keyboard.press("3")
            expect(page.locator("#queue li")).to_have_count(1)
            # threat image projection: the supervisor enables it for op1; the next verdict brings a TIP case
            env.service.tip.configure("op1", enabled=True, probability=1.0, by="sup1")
            expect(page.locator("#case-head")).to_contain_text(env.parcels[3])
            page.keyboard.press("f")
            expect(page.locator("#case-head")).not_to_contain_text(env.parcels[3])
            expect(page.locator("#queue li")).to_have_count(1)  # the TIP case, shown like any parcel
            tip_id = env.service.tip.pending_for("op1")[0].case_id
            expect(page.locator("#case-head")).to_contain_text(tip_id)
            page.keyboard.press("t")
            expect(page.locator("#banner")).to_contain_text("threat image projection test")
            expect(page.locator("#tip-box")).to_be_visible()
            if os.environ.get("SMARTSCREEN_SCREENSHOT_DIR"):
                page.screenshot(path=os.path.join(os.environ["SMARTSCREEN_SCREENSHOT_DIR"], "tip.png"))
            if os.environ.get("SMARTSCREEN_SCREENSHOT_DIR"):
                page.screenshot(path=os.path.join(os.environ["SMARTSCREEN_SCREENSHOT_DIR"], "review.png"))
            assert errors == []
        finally:
            browser.close()
    stored = {pid: env.service.journal.verdicts_for(pid) for pid in env.parcels}
    assert [(v.kind, v.operator_id) for _, v in stored[env.parcels[0]]] == [(VerdictKind.THREAT_CONFIRMED, "op1")]
    assert stored[env.parcels[0]][0][1].boxes[0].class_name == "knife"  # the detector's box, confirmed
    assert [v.kind for _, v in stored[env.parcels[1]]] == [VerdictKind.FALSE_ALARM]
    assert [v.kind for _, v in stored[env.parcels[2]]] == [VerdictKind.NEEDS_OPENING]
    assert [v.kind for _, v in stored[env.parcels[3]]] == [VerdictKind.FALSE_ALARM]
    tip = env.service.tip.event(tip_id)
    assert tip is not None and tip.outcome.value == "hit" and tip.response_ms is not None
    assert env.service.journal.events_for(tip_id) == []


def test_supervisor_enables_tip_from_the_page(served: tuple[str, Env]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, env = served
    env.client.post(f"/api/parcels/{env.parcels[0]}/verdicts", json={"kind": "false_alarm"}, headers=env.auth("op1"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            page.goto(url + "/")
            # Hold the queue's first load: the page must already have moved focus off the password field, so
            # that a shortcut pressed while the queue loads acts as a shortcut (CI once lost the "s" here).
            held: list[Route] = []
            page.route("**/api/queue?*", lambda route: held.append(route))
            page.fill("#username", "sup1")
            page.fill("#password", PASSWORD)
            page.press("#password", "Enter")
            expect(page.locator("#supervise")).to_be_visible()
            assert page.evaluate("document.activeElement.id") == "viewer"
            page.keyboard.press("s")
            expect(page.locator("#panel")).to_contain_text("Threat image projection")
            assert held, "the queue request was not held"
            for route in held:
                route.continue_()
            page.unroute("**/api/queue?*")
            expect(page.locator("#queue-count")).to_contain_text("waiting")
            expect(page.locator("#panel")).to_contain_text("op1")
            page.check("#tip-enabled-op2")
            page.fill("#tip-p-op2", "0.05")
            page.click("#tip-save-op2")
            expect(page.locator("#banner")).to_contain_text("TIP for op2 saved")
            if os.environ.get("SMARTSCREEN_SCREENSHOT_DIR"):
                page.screenshot(path=os.path.join(os.environ["SMARTSCREEN_SCREENSHOT_DIR"], "supervisor.png"))
        finally:
            browser.close()
    settings = env.service.tip.settings("op2")
    assert settings.enabled and settings.probability == 0.05 and settings.updated_by == "sup1"
