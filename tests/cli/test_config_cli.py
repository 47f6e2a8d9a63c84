from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smartscreen.cli import main
from smartscreen.config import load_config, parse_config
from smartscreen.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "demo-centre.yaml"


def test_example_config_validates() -> None:
    config = load_config(EXAMPLE)
    assert [line.id for line in config.lines] == ["L1", "L2"]
    assert config.model_config.get("extra") == "forbid"


def test_invalid_field_reported_with_yaml_line() -> None:
    text = EXAMPLE.read_text().replace(
        "belt_speed_mm_s: 2500\n    scanner_to_gate_mm: 5000\n    actuator_margin_ms: 150\n  - id: L2",
        "belt_speed_mm_s: -3\n    scanner_to_gate_mm: 5000\n    actuator_margin_ms: 150\n  - id: L2",
        1,
    )
    expected_line = next(i for i, line in enumerate(text.splitlines(), 1) if "belt_speed_mm_s: -3" in line)
    with pytest.raises(ConfigError) as info:
        parse_config(text, "demo.yaml")
    assert f"demo.yaml:{expected_line}: lines.0.belt_speed_mm_s" in str(info.value)


def test_unknown_field_and_bad_url_scheme_rejected() -> None:
    text = "centre: {id: C1}\nwaybill: {url: 'file://x.json'}\nlines:\n  - id: L1\n    scanner: ftp://x\n    io_board: sim://\n    colour: red\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yaml")
    message = str(info.value)
    assert "c.yaml:5: lines.0.scanner" in message and "ftp" in message
    assert "c.yaml:7: lines.0.colour" in message


def test_duplicate_line_ids_rejected() -> None:
    text = "centre: {id: C1}\nwaybill: {url: 'file://x.json'}\nlines:\n  - {id: L1, scanner: 'sim://', io_board: 'sim://'}\n  - {id: L1, scanner: 'sim://', io_board: 'sim://'}\n"
    with pytest.raises(ConfigError, match="unique"):
        parse_config(text)


def test_validate_config_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-config", str(EXAMPLE)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("centre: {id: C1}\nlines: []\nwaybill: {url: 'file://x'}\n")
    assert main(["validate-config", str(bad)]) == 1
    assert "lines" in capsys.readouterr().err
    assert main(["validate-config", str(tmp_path / "missing.yaml")]) == 1


def test_module_entry_point_prints_version_and_help() -> None:
    out = subprocess.run([sys.executable, "-m", "smartscreen", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("smartscreen ")
    out = subprocess.run([sys.executable, "-m", "smartscreen", "--help"], capture_output=True, text=True, check=True)
    assert "validate-config" in out.stdout


def test_runtime_imports_without_torch() -> None:
    code = "import sys, smartscreen.cli, smartscreen.domain, smartscreen.config; smartscreen.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_validate_config_checks_the_policy_covers_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    default_policy = ROOT / "src" / "smartscreen" / "risk" / "policies" / "default.yaml"
    policy = tmp_path / "policy.yaml"
    text = default_policy.read_text(encoding="utf-8")
    assert "\n  firecracker:" in text
    policy.write_text("\n".join(line for line in text.splitlines() if not line.startswith("  firecracker:")))
    config = tmp_path / "centre.yaml"
    config.write_text(
        EXAMPLE.read_text(encoding="utf-8") + f"\npolicy: {{path: {policy}}}\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["validate-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "no rule for the model's classes ['firecracker']" in err and "smartscreen-yolo11n@" in err


def test_a_key_given_twice_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    """Line configuration, risk policy and model manifest: PyYAML alone would keep the second value."""
    from smartscreen.detection.package import parse_manifest
    from smartscreen.errors import ModelPackageError
    from smartscreen.risk.policy import parse_policy
    from smartscreen.strict_yaml import load_yaml

    text = EXAMPLE.read_text()
    doubled = text.replace("    belt_speed_mm_s: 2500\n", "    belt_speed_mm_s: 2500\n    belt_speed_mm_s: 900\n", 1)
    assert doubled != text
    with pytest.raises(ConfigError, match="duplicate key 'belt_speed_mm_s'"):
        parse_config(doubled, "centre.yaml")
    policy = (ROOT / "src/smartscreen/risk/policies/default.yaml").read_text()
    parse_policy(policy, "default.yaml")  # the shipped policy has no duplicates
    first_key = next(line for line in policy.splitlines() if line and not line.startswith((" ", "#")))
    with pytest.raises(ConfigError, match="duplicate key"):
        parse_policy(policy + "\n" + first_key + "\n", "default.yaml")
    manifest = (ROOT / "models/smartscreen-yolo11n/model.yaml").read_text()
    parse_manifest(manifest)
    with pytest.raises(ModelPackageError, match="duplicate key 'version'"):
        parse_manifest(manifest + "version: 9.9.9\n")
    # nested mappings are checked too; equal keys in different mappings and YAML merge keys are fine
    with pytest.raises(Exception, match="first given on line 2"):
        load_yaml("a:\n  b: 1\n  b: 2\n")
    assert load_yaml("a: {b: 1}\nc: {b: 2}\nbase: &base {x: 1}\nd:\n  <<: *base\n  y: 2\n")["d"] == {"x": 1, "y": 2}


def test_detector_verifier_off_written_bare_in_yaml() -> None:
    """YAML 1.1 reads a bare ``off`` as false: ``verifier: off`` must still mean off."""
    text = EXAMPLE.read_text()
    assert "detector:\n" in text
    off = parse_config(text.replace("detector:\n", "detector:\n  verifier: off\n", 1), "centre.yaml")
    assert off.detector.verifier == "off"
    assert parse_config(text, "centre.yaml").detector.verifier == "package"
    with pytest.raises(ConfigError, match="verifier"):
        parse_config(text.replace("detector:\n", "detector:\n  verifier: sometimes\n", 1), "centre.yaml")
