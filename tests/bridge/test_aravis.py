"""Interoperability with Aravis (a GigE Vision stack nobody here wrote), both directions, on loopback.

* Aravis's tools discover, read and stream from our scanner emulator (which serves its GenICam XML),
  and Aravis's receiver gets lost packets back through our emulator's PACKETRESEND handling.
* Our receiver streams from Aravis's fake camera (``arv-fake-gv-camera-0.8``).

Aravis talks GVCP on the fixed port 3956, so the emulator listens on 127.0.0.2:3956 (all of
127/8 is loopback on Linux) and the fake camera on 127.0.0.1:3956.
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator

import pytest

from firmware_bridge import gvcp
from firmware_bridge.genicam import resolve_features
from firmware_bridge.gige_client import GvcpClient, discover
from firmware_bridge.gige_receiver import GvspReceiver, ResendTiming
from firmware_bridge.scanner_emulator import FaultConfig, ScannerEmulator
from tests.bridge.conftest import small_plan

ARV_TOOL = shutil.which("arv-tool-0.8")
ARV_CAMERA_TEST = shutil.which("arv-camera-test-0.8")
ARV_FAKE = shutil.which("arv-fake-gv-camera-0.8")
EMU_HOST = "127.0.0.2"

pytestmark = [pytest.mark.aravis, pytest.mark.slow]
needs_tools = pytest.mark.skipif(
    not (ARV_TOOL and ARV_CAMERA_TEST),
    reason="Debian's aravis-tools / aravis-tools-cli are not installed (arv-tool-0.8, arv-camera-test-0.8); "
    "`make test` installs them",
)
needs_fake = pytest.mark.skipif(
    not ARV_FAKE, reason="Debian's aravis-tools is not installed (arv-fake-gv-camera-0.8); `make test` installs it"
)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[ScannerEmulator]:
    faults = getattr(request, "param", None)
    if not _port_free(EMU_HOST, gvcp.GVCP_PORT):
        pytest.fail(f"{EMU_HOST}:{gvcp.GVCP_PORT} is busy: another GigE Vision device runs there")
    plan = small_plan(n_channels=64, belt_speed_mm_s=2500.0)
    emu = ScannerEmulator(plan, host=EMU_HOST, gvcp_port=gvcp.GVCP_PORT, repeat=True, faults=faults)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def camera_test(seconds: float, *extra: str) -> dict[str, str]:
    """Run arv-camera-test for ``seconds`` and parse its ``key = value`` summary."""
    assert ARV_CAMERA_TEST is not None
    proc = subprocess.run(
        ["timeout", "-s", "INT", str(seconds), "stdbuf", "-oL", ARV_CAMERA_TEST, "-n", EMU_HOST, *extra],
        capture_output=True,
        text=True,
        timeout=seconds + 20,
        check=False,
    )
    out = dict(re.findall(r"^(\w[\w ]*?)\s+= (.*)$", proc.stdout, re.MULTILINE))
    assert "n_completed_buffers" in out, f"arv-camera-test gave no summary:\n{proc.stdout}\n{proc.stderr}"
    return out


@needs_tools
def test_arv_tool_reads_features_from_the_emulator_xml(emulator: ScannerEmulator) -> None:
    assert ARV_TOOL is not None
    proc = subprocess.run(
        [ARV_TOOL, "-a", EMU_HOST, "control", "Width", "PixelFormat", "ChannelCount", "AcquisitionLineRate"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    values = dict(re.findall(r"^(\w+) = (\S+)", proc.stdout, re.MULTILINE))
    assert values["PixelFormat"] == "Mono16"
    assert int(values["ChannelCount"]) == 64
    assert int(values["Width"]) == 2 * 64 + 24  # line header + both energies
    assert float(values["AcquisitionLineRate"]) == pytest.approx(1562.5)
    # Aravis writes through our XML too: change the block height and read it back with our own client
    subprocess.run([ARV_TOOL, "-a", EMU_HOST, "control", "Height=16"], capture_output=True, timeout=20, check=True)
    assert emulator.lines_per_block == 16


@needs_tools
def test_aravis_streams_from_the_emulator(emulator: ScannerEmulator) -> None:
    out = camera_test(3.0)
    assert out["vendor name"] == "smartscreen"
    assert int(out["payload"].split()[0]) == emulator.payload_size
    assert int(out["n_completed_buffers"]) >= 20
    assert int(out["n_failures"]) == 0 and int(out["n_missing_frames"]) == 0
    assert emulator.counters.blocks_sent >= int(out["n_completed_buffers"])


@needs_tools
@pytest.mark.parametrize("emulator", [FaultConfig(loss=0.03, seed=4)], indirect=True)
def test_aravis_recovers_lost_packets_through_our_resend(emulator: ScannerEmulator) -> None:
    out = camera_test(3.0, "--no-packet-socket")
    assert int(out["n_completed_buffers"]) >= 20
    assert emulator.counters.packets_dropped > 0
    assert emulator.counters.resend_requests > 0 and emulator.counters.packets_resent > 0
    assert int(out["n_failures"]) == 0


@pytest.fixture
def fake_camera(request: pytest.FixtureRequest) -> Iterator[str]:
    if not _port_free("127.0.0.1", gvcp.GVCP_PORT):
        pytest.fail(f"127.0.0.1:{gvcp.GVCP_PORT} is busy: another GigE Vision device runs there")
    assert ARV_FAKE is not None
    args = [ARV_FAKE, "-i", "127.0.0.1", "-s", "GVTEST"]
    loss = getattr(request, "param", 0)
    if loss:
        args += ["-r", str(loss)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while discover("127.0.0.1", timeout_s=0.2) is None:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("arv-fake-gv-camera-0.8 did not answer discovery")
        yield "127.0.0.1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stream_from(host: str, n_frames: int, timing: ResendTiming | None = None) -> tuple[list, GvspReceiver]:  # type: ignore[type-arg]
    client = GvcpClient(host)
    try:
        features = resolve_features(client.read_xml())
        client.take_control()
        width = client.read_register(features["Width"].address)
        height = client.read_register(features["Height"].address)
        pixfmt = client.read_register(features["PixelFormat"].address)
        payload = width * height * ((pixfmt >> 16) & 0xFF) // 8
        rx = GvspReceiver(payload_size=payload, packet_size=1500, resend_target=(host, gvcp.GVCP_PORT), timing=timing)
        rx.start()
        client.write_registers(
            [
                (gvcp.Reg.SCPS0, 1500),
                (gvcp.Reg.SCDA0, struct.unpack(">I", socket.inet_aton(client.local_ip))[0]),
                (gvcp.Reg.SCP0, rx.port),
            ]
        )
        start = features["AcquisitionStart"]
        client.write_register(start.address, start.command_value if start.command_value is not None else 1)
        frames = []
        deadline = time.monotonic() + 15
        while len(frames) < n_frames and time.monotonic() < deadline:
            f = rx.get_frame(0.5)
            if f is not None:
                frames.append(f)
        stop = features["AcquisitionStop"]
        client.write_register(stop.address, stop.command_value if stop.command_value is not None else 1)
        client.release_control()
        rx.stop()
        return frames, rx
    finally:
        client.close()


@needs_fake
def test_our_receiver_streams_from_the_aravis_fake_camera(fake_camera: str) -> None:
    info = discover(fake_camera)
    assert info is not None and info.manufacturer == "Aravis" and info.serial == "GVTEST"
    frames, rx = stream_from(fake_camera, 10)
    assert len(frames) == 10
    assert all(f.complete for f in frames)
    assert all(f.leader is not None and f.leader.pixel_format == frames[0].leader.pixel_format for f in frames)
    ids = [f.block_id for f in frames]
    assert ids == list(range(ids[0], ids[0] + 10))  # consecutive, even across the 16-bit wrap
    assert any(f.payload.any() for f in frames)  # the fake camera's test pattern, not zeros
    assert rx.stats.frames_incomplete == 0


@needs_fake
@pytest.mark.parametrize("fake_camera", [50], indirect=True)  # 5 % loss; the fake camera never resends
def test_fake_camera_loss_is_reported_as_incomplete_frames(fake_camera: str) -> None:
    timing = ResendTiming(frame_retention_s=0.15, max_requests_per_packet=1)
    frames, rx = stream_from(fake_camera, 6, timing)
    assert len(frames) == 6  # nothing hangs
    assert rx.stats.frames_incomplete > 0 and rx.stats.packets_missing > 0
    assert all(f.complete == bool(f.packet_ok.all()) for f in frames)
