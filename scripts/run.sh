#!/usr/bin/env bash
# Open the Gambiarra desktop app, setting it up first when needed (the first run, or after
# pyproject.toml changed: see setup.sh); otherwise no pip runs and it starts offline.
# Its Host button runs a hub (data in the user data dir); the headless hub is
# `.venv/bin/gambiarra serve --mdns`.
# Extra arguments go to gambiarra-desktop, e.g. scripts/run.sh --port 3001.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gambiarra-desktop "$@"
