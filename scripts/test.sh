#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run them: pytest arguments pass through.
# System package: Xvfb (a virtual X display for the GUI test), via apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v Xvfb >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing Xvfb for the GUI test..."
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb >/dev/null
    elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb >/dev/null
    else
        echo "note: Xvfb is not installed and cannot be installed here; the GUI test will be skipped" >&2
    fi
fi
python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
