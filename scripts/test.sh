#!/usr/bin/env bash
# Set up (first time only) and run every check CI runs: ruff, mypy and the test suite.
# On a fresh Debian/Ubuntu machine it first installs the system packages the tests need:
# as root directly, else with `sudo -n` when that works without a password; otherwise it
# prints the exact apt-get line to run and stops (exit 2), rather than failing later.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test suite needs: the libraries Qt loads offscreen and under Xvfb
# (shared/PLATFORM.md), iproute2 for the virtual LAN of network namespaces that the
# multi-host tests run on (they skip without root or without it), and for the Linux
# packages that tests/packaging builds: the Wayland client libraries the bundled Qt
# plugins link against (the .deb's Depends are read off what is installed) and
# desktop-file-validate; redis-server for the rate limits two hubs share (the tests start
# their own on a socket and a free port; the service apt may start is never used);
# chromium for the guests' web page, which the browser tests open in it through Playwright
# (at /usr/bin/chromium; Playwright never downloads a browser here).
APT_PACKAGES=(
    libglib2.0-0 libegl1 libgl1 libx11-6 libdbus-1-3 libfontconfig1 libfreetype6
    libxkbcommon0 fonts-dejavu-core xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-image0
    libxcb-keysyms1 libxcb-render-util0 libxcb-render0 libxcb-shape0 libxcb-util1
    libxcb-xkb1 libxkbcommon-x11-0 iproute2 libwayland-cursor0 libwayland-egl1
    desktop-file-utils redis-server chromium
)

install_system_packages() {
    # Only Debian-like systems are handled; elsewhere the tests that need these skip or
    # say what is missing, as they always did.
    command -v dpkg >/dev/null && command -v apt-get >/dev/null || return 0
    local missing=() package
    for package in "${APT_PACKAGES[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0  # The usual case: no apt-get update, no root.
    local as_root=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            echo "The tests need these system packages, which are not installed:" >&2
            echo "    ${missing[*]}" >&2
            echo "Install them (as root), then run this command again:" >&2
            echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
            exit 2
        fi
    fi
    echo "Installing system packages the tests need: ${missing[*]}" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_system_packages
bash scripts/setup.sh test,package
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/mypy --strict packaging/tools
# `set -e` keeps every failure's exit code, pytest's 5 ("no tests ran") included.
.venv/bin/python -m pytest -q --timeout=120 "$@"
