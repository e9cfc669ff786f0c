#!/usr/bin/env bash
# The multi-core stress run (see scripts/soak.py or --help). Uses .venv when it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
exec "$python" scripts/soak.py "$@"
