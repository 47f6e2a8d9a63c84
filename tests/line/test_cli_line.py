"""The shipped configurations validate, and ``smartscreen demo`` runs, prints its summary and exits 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smartscreen.config import load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["demo-centre.yaml", "line-example.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    cfg = load_config(ROOT / "config" / name)
    assert cfg.lines and all(line.scanner_to_gate_mm > 0 for line in cfg.lines)


@pytest.mark.slow
def test_demo_runs_and_prints_a_live_summary(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = yaml.safe_load((ROOT / "config" / "demo-centre.yaml").read_text(encoding="utf-8"))
    for line in data["lines"]:  # small and quick, same wiring as the shipped demo
        line["scanner"] += "&parcels=3"
        line["geometry"] = {"channels": 256}
    data["detector"]["package"] = str(tiny_model_dir)
    run_dir = tmp_path / "demo-run"
    data["journal"] = {"url": f"sqlite:///{run_dir / 'journal.db'}", "image_dir": str(run_dir / "images")}
    data["waybill"]["url"] = f"file://{ROOT / 'datasets/waybills/demo-waybills.json'}"
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "smartscreen", "demo", "--config", str(config), "--duration", "8", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert re.search(r"review page: http://127\.0\.0\.1:\d+/", out)
    assert "operator1" in out and "Prometheus metrics: http://" in out
    summaries = re.findall(r"parcels\s+(\d+) \(([\d.]+)/s\)\s+alarms (\d+)\s+fail-closed (\d+)\s+misses (\d+)", out)
    assert summaries and int(summaries[-1][0]) > 0  # parcels were decided while it ran
    assert "final:" in out
