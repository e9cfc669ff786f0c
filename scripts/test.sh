#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run them: pytest arguments pass through.
# System packages, via apt-get when missing: Xvfb (a virtual X display for the GUI test) and
# weechat-headless (an independent IRC client the server must satisfy).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
command -v weechat-headless >/dev/null 2>&1 || missing+=(weechat-headless)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || command -v sudo >/dev/null 2>&1; }; then
        echo "installing ${missing[*]} for the tests..."
        $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "note: ${missing[*]} cannot be installed here; the tests that need them will be skipped" >&2
    fi
fi
python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
