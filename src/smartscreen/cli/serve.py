"""``smartscreen serve --config FILE [--seed-demo-users]``: the review API and operator web page."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "serve the operator review API and web page (FastAPI + uvicorn) on the configured journal"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="configuration YAML (journal, api sections)")
    parser.add_argument("--host", help="bind address (default: api.host from the config)")
    parser.add_argument("--port", type=int, help="TCP port (default: api.port from the config)")
    parser.add_argument(
        "--seed-demo-users",
        action="store_true",
        help="create operator1, operator2, supervisor and admin for the config's centre with random passwords "
        "and print them (existing accounts are left alone)",
    )
    parser.add_argument(
        "--create-admin",
        metavar="USERNAME",
        help="create an admin account for the config's centre; the password is read from SMARTSCREEN_ADMIN_PASSWORD",
    )


def run(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from smartscreen.api import create_app
    from smartscreen.config import load_config
    from smartscreen.errors import ConfigError
    from smartscreen.review import Role, seed_demo_accounts

    config = load_config(args.config)
    app = create_app(config.api, config.journal.url, config.journal.image_dir)
    service = app.state.smartscreen.service
    if args.create_admin:
        password = os.environ.get("SMARTSCREEN_ADMIN_PASSWORD", "")
        if not password:
            raise ConfigError(
                "--create-admin needs the password in the SMARTSCREEN_ADMIN_PASSWORD environment variable"
            )
        service.accounts.create(args.create_admin, password, centre_id=config.centre.id, role=Role.ADMIN)
        print(f"admin account {args.create_admin} created for centre {config.centre.id}")
    if args.seed_demo_users:
        created = seed_demo_accounts(service.accounts, config.centre.id)
        for username, (role, password) in created.items():
            print(f"demo account  {username:<11} role {role.value:<10} password {password}")
        if not created:
            print("demo accounts exist already (passwords unchanged)")
    host = args.host or config.api.host
    port = config.api.port if args.port is None else args.port
    print(f"review page: http://{host}:{port}/  (journal {config.journal.url}, images {config.journal.image_dir})")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0
