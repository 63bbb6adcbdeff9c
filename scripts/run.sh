#!/usr/bin/env bash
# Set up (first time only) and run a Gambiarra hub on port 3000, published on the LAN by
# mDNS, with its data in the user data dir.
# Extra arguments go to `gambiarra serve`, e.g. scripts/run.sh --port 3001.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gambiarra serve --mdns "$@"
