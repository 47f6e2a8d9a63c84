"""``smartscreen validate-config FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

from smartscreen.config import load_config

HELP = "check a configuration file; exits non-zero naming the YAML line and field of each problem"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="configuration YAML")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(
        f"{args.file}: valid (centre {config.centre.id}, {len(config.lines)} line(s): {', '.join(line.id for line in config.lines)})"
    )
    return 0
