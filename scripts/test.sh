#!/usr/bin/env bash
# Set up (first time only) and run every check CI runs: ruff, mypy and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,package
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/mypy --strict packaging/tools
.venv/bin/python -m pytest -q --timeout=120 "$@"
