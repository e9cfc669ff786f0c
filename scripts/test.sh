#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run them: pytest arguments pass through.
# System packages, via apt-get when missing: Xvfb (a virtual X display for the GUI test),
# weechat-headless (an independent IRC client the server must satisfy), chromium and
# chromium-driver (a real browser for the web client's test, driven by Selenium) and nodejs
# (the web client's JavaScript unit tests), and redis-server (the cluster tests' shared log).
# In CI (CI set) a package that cannot be installed fails the run here, saying why; elsewhere
# it is a warning, and the tests that need it are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A package_of=([Xvfb]=xvfb [weechat-headless]=weechat-headless [chromium]=chromium [chromedriver]=chromium-driver
                        [node]=nodejs [redis-server]=redis-server)

missing_packages() {
    local command
    for command in "${!package_of[@]}"; do
        command -v "$command" >/dev/null 2>&1 || echo "${package_of[$command]}"
    done | sort
}

cannot_install() {
    if [ -n "${CI:-}" ]; then
        echo "error: $1; CI runs the tests that need them, so it stops here" >&2
        exit 1
    fi
    echo "warning: $1; the tests that need them will be skipped" >&2
}

mapfile -t missing < <(missing_packages)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo -n)  # -n: fail rather than wait for a password nobody can type
    if ! command -v apt-get >/dev/null 2>&1; then
        cannot_install "${missing[*]} missing, and there is no apt-get to install them"
    elif [ ${#sudo[@]} -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
        cannot_install "${missing[*]} missing, and installing them needs root or sudo"
    else
        echo "installing ${missing[*]} for the tests..."
        # Inside `if`, a failure does not stop the script (set -e ignores it): it is handled here.
        if ! { "${sudo[@]}" apt-get update -qq &&
               "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
            cannot_install "apt-get could not install ${missing[*]} (its messages are above)"
        else
            mapfile -t still < <(missing_packages)
            [ ${#still[@]} -eq 0 ] || cannot_install "apt-get ran, but ${still[*]} is still missing"
        fi
    fi
fi
python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
