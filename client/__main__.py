"""python -m client: chat on a hubchat (or any IRC) server from a terminal, a pipe or a window."""
from __future__ import annotations

import argparse
import asyncio
import sys

from client.core import DEFAULT_CHANNEL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m client", description="Chat on a hubchat server.")
    parser.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=6667, help="server port (default 6667)")
    parser.add_argument("--nick", help="your nickname (asked for when missing)")
    parser.add_argument("--channel", default=DEFAULT_CHANNEL, help=f"room to join first (default {DEFAULT_CHANNEL})")
    parser.add_argument("--tls", action="store_true", help="connect with TLS, verifying the certificate")
    parser.add_argument("--insecure", action="store_true", help="with --tls: accept a self-signed certificate")
    parser.add_argument("--gui", action="store_true", help="open a window instead of using the terminal")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = (args.host, args.port, args.nick, args.channel, args.tls, args.insecure)
    if args.gui:
        from client import gui
        return gui.main(*options)
    from client import tui
    try:
        if not sys.stdin.isatty():
            return asyncio.run(tui.run_piped(*options))
        return asyncio.run(tui.run(*options))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
