"""python -m hub: start the hubchat server (supervisor, hub and workers)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

import config
from config.schema import sections
from hub.supervisor import Supervisor, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hub", description="Run the hubchat IRC server.")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file (see config/example.toml)")
    for section, cls in sections():
        for f in fields(cls):
            flag = f.metadata.get("flag")
            if flag:
                parser.add_argument(flag, dest=f"{section}.{f.name}", type=type(f.default),
                                    default=None, help=f.metadata["help"])
    parser.add_argument("--hash-password", action="store_true",
                        help="Print a password hash for the [operators] table (password read from stdin) and exit.")
    parser.add_argument("--create-account", metavar="NAME",
                        help="Create an account in server.data_dir (password read from stdin) and exit; "
                             "run it while the server is stopped: the hub reads the accounts as it starts.")
    parser.add_argument("--no-flood-control", dest="server.flood_control", action="store_const", const=False,
                        default=None, help="Turn flood control off; for trusted load tests only.")
    parser.add_argument("--no-history", dest="history.enabled", action="store_const", const=False,
                        default=None, help="Keep no history and no channel state across restarts.")
    parser.add_argument("--no-web", dest="web.enabled", action="store_const", const=False,
                        default=None, help="No HTTP listener (web client, WebSocket, /metrics, /healthz).")
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    result: dict[str, dict[str, object]] = {}
    for dest, value in vars(args).items():
        if "." in dest and value is not None:
            section, key = dest.split(".", 1)
            result.setdefault(section, {})[key] = value
    return result


def print_password_hash() -> int:
    from getpass import getpass

    from config.passwords import hash_password
    password = getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("hubchat: an empty password is not allowed", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def create_account(cfg: config.Config, name: str) -> int:
    """An operator's way to make an account without a client (the same checks as REGISTER)."""
    import os
    from getpass import getpass

    from accounts import names
    from accounts.store import AccountStore, make_record
    from history.service import database_path
    if names.check_account_name(name, name, nicklen=cfg.limits.nicklen) is not None:
        print(f"hubchat: {name!r} cannot be an account name (it must be a valid nickname)", file=sys.stderr)
        return 2
    password = getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if names.check_password_strength(password) is not None:
        print("hubchat: that password is too weak (at least 8 characters)", file=sys.stderr)
        return 2
    os.makedirs(cfg.server.data_dir, exist_ok=True)
    store = AccountStore(database_path(cfg))
    try:
        key = names.account_key(name)
        if key in store.all():
            print(f"hubchat: the account {name} exists already", file=sys.stderr)
            return 1
        store.write({key: make_record(name, "", password)})
    finally:
        store.close()
    print(f"account {name} created in {database_path(cfg)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.hash_password:
        return print_password_hash()
    overrides = overrides_from(args)

    def load() -> config.Config:
        return config.load(args.config, overrides=overrides)

    try:
        cfg = load()
    except config.ConfigError as exc:
        print(f"hubchat: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.create_account:
        return create_account(cfg, args.create_account)
    setup_logging(cfg.server.log_level)
    try:
        return Supervisor(cfg, reload=load).run()
    except config.ConfigError as exc:
        print(f"hubchat: configuration error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hubchat: cannot listen on {cfg.server.host}:{cfg.server.port}: {exc.strerror}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
