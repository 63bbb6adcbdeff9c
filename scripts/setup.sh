#!/usr/bin/env bash
# Create .venv and install Gambiarra Desktop into it. Idempotent; used by run.sh and test.sh.
# Usage: scripts/setup.sh [extras]   (e.g. "test", "package" or "test,package": the
# test tools, PyInstaller for packaging/, or both)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Gambiarra Desktop needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
target="."
if [ -n "${1:-}" ]; then
    target=".[$1]"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
