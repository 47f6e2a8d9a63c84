"""``smartscreen validate-config FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

from smartscreen.config import load_config

HELP = (
    "check a configuration file, its risk policy and its model package; exits non-zero naming the YAML line and "
    "field of each problem"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="configuration YAML")


def run(args: argparse.Namespace) -> int:
    from smartscreen.detection.package import load_model_package
    from smartscreen.risk.policy import load_policy

    config = load_config(args.file)
    policy = load_policy(config.policy.path)
    package = load_model_package(config.detector.package)
    policy.check_covers(package.class_names, package.manifest.model_id, str(config.policy.path))
    threshold = package.manifest.operating_threshold(config.detector.tta, config.detector.verifier)
    if not policy.uses_model_threshold:
        binding = ""
    elif threshold is None:
        binding = f"; `threshold: model` = fallback {policy.model_threshold_fallback:g} (the package records none)"
    else:
        binding = f"; `threshold: model` = {threshold:.4f} (recorded in the package)"
    print(
        f"{args.file}: valid (centre {config.centre.id}, {len(config.lines)} line(s): "
        f"{', '.join(line.id for line in config.lines)}; policy {policy.version}; model {package.manifest.model_id}"
        f"{binding})"
    )
    return 0
