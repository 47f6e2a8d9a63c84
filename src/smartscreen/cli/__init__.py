"""The ``smartscreen`` command line: one module per verb, imported only when used.

Each verb module exposes ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Heavy imports (onnxruntime, torch) happen inside ``run`` so
``smartscreen --help`` stays fast and works without the optional extras.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from smartscreen import __version__
from smartscreen.errors import SmartScreenError

# verb -> module, in the order shown by --help
VERBS: dict[str, str] = {
    "validate-config": "smartscreen.cli.validate_config",
    "synth": "smartscreen.cli.synth",
    "emulate": "smartscreen.cli.emulate",
    "detect": "smartscreen.cli.detect",
    "dataset": "smartscreen.cli.dataset",
    "train": "smartscreen.cli.train",
    "export": "smartscreen.cli.export",
    "eval": "smartscreen.cli.eval",
    "verifier": "smartscreen.cli.verifier",
    "run": "smartscreen.cli.run",
    "serve": "smartscreen.cli.serve",
    "demo": "smartscreen.cli.demo",
}

logger = logging.getLogger(__name__)


def _load_verbs() -> dict[str, ModuleType]:
    modules: dict[str, ModuleType] = {}
    for verb, module_name in VERBS.items():
        try:
            modules[verb] = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:  # the verb exists but a dependency is missing: a real error
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartscreen",
        description="AI X-ray screening of parcels: imaging, detection, risk, reject gate and operator review.",
    )
    parser.add_argument("--version", action="version", version=f"smartscreen {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, module in _load_verbs().items():
        verb_parser = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        module.add_arguments(verb_parser)
        verb_parser.set_defaults(_run=module.run)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    configure_logging(args.verbose)
    try:
        return int(args._run(args))
    except SmartScreenError as e:
        print(f"smartscreen {args.verb}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"smartscreen {args.verb}: interrupted", file=sys.stderr)
        return 130
