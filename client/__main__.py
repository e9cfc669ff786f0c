"""python -m client: chat on a hubchat (or any IRC) server from a terminal, a pipe or a window."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from client.accounts import PASSWORD_VARIABLE
from client.core import DEFAULT_CHANNEL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m client", description="Chat on a hubchat server.")
    parser.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=6667, help="server port (default 6667)")
    parser.add_argument("--nick", help="your nickname (asked for when missing)")
    parser.add_argument("--channel", default=DEFAULT_CHANNEL, help=f"room to join first (default {DEFAULT_CHANNEL})")
    parser.add_argument("--tls", action="store_true", help="connect with TLS, verifying the certificate")
    parser.add_argument("--insecure", action="store_true", help="with --tls: accept a self-signed certificate")
    parser.add_argument("--account", help="log in to this account (SASL); the password is asked for, or read "
                                          f"from the environment variable {PASSWORD_VARIABLE}")
    parser.add_argument("--gui", action="store_true", help="open a window instead of using the terminal")
    return parser


def read_password(account: str) -> str | None:
    """HUBCHAT_PASSWORD, or asked for on the terminal (never echoed); None: no way to get one."""
    secret = os.environ.get(PASSWORD_VARIABLE)
    if secret:
        return secret
    if not sys.stdin.isatty():
        return None
    try:
        return getpass.getpass(f"Password for {account}: ") or None
    except (EOFError, KeyboardInterrupt):
        return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    login = None
    if args.account:
        secret = read_password(args.account)
        if secret is None:
            print(f"--account {args.account} needs a password: set {PASSWORD_VARIABLE}, or run the client in a "
                  "terminal to be asked for it.", file=sys.stderr)
            return 2
        login = (args.account, secret)
    nick = args.nick or args.account  # logged in, the account's own nickname is free to take
    options = (args.host, args.port, nick, args.channel, args.tls, args.insecure)
    if args.gui:
        from client import gui
        return gui.main(*options, login=login)
    from client import tui
    try:
        if not sys.stdin.isatty():
            return asyncio.run(tui.run_piped(*options, login=login))
        return asyncio.run(tui.run(*options, login=login))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
