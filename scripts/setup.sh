#!/usr/bin/env bash
# Create .venv and install Gambiarra Desktop into it, once: used by run.sh and test.sh.
# Usage: scripts/setup.sh [--force] [extras]   (extras e.g. "test", "package" or
# "test,package": the test tools, PyInstaller for packaging/, or both)
#
# A stamp file (.venv/.gambiarra-setup) records the SHA-256 of pyproject.toml and the
# extras installed. While both still hold, this script returns at once without running
# pip, so the app starts in about a second and works offline; it installs again when
# pyproject.toml changes, more extras are asked for, .venv is gone, or with --force.
# GAMBIARRA_SETUP_STAMP points at another stamp file (the tests use it).
set -euo pipefail
cd "$(dirname "$0")/.."
STAMP="${GAMBIARRA_SETUP_STAMP:-.venv/.gambiarra-setup}"
force=0
if [ "${1:-}" = "--force" ]; then
    force=1
    shift
fi
wanted="${1:-}"

digest="$(sha256sum pyproject.toml | cut -d' ' -f1)"
stamp_digest=""
stamp_extras=""
if [ -f "$STAMP" ]; then
    while read -r key value; do
        case "$key" in
            pyproject-sha256) stamp_digest="$value" ;;
            extras) stamp_extras="$value" ;;
        esac
    done < "$STAMP"
fi

# Sorted, de-duplicated, comma-separated union of extras lists.
merge_extras() {
    printf '%s\n' "$@" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -
}

all_extras="$(merge_extras "$stamp_extras" "$wanted")"
if [ "$force" = 0 ] && [ -x .venv/bin/python ] && [ -x .venv/bin/gambiarra-desktop ] \
        && [ "$digest" = "$stamp_digest" ] && [ "$all_extras" = "$stamp_extras" ]; then
    exit 0  # Set up already, for this pyproject.toml and these extras.
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "Gambiarra Desktop needs Python 3.11 or newer; $PYTHON is" \
             "$("$PYTHON" --version 2>&1)." >&2
        exit 1
    fi
    "$PYTHON" -m venv .venv
fi

echo "Setting up .venv (once; a minute on a fresh machine)..." >&2
log="$(mktemp "${TMPDIR:-/tmp}/gambiarra-setup.XXXXXX")"
trap 'rm -f "$log"' EXIT
# setuptools warns about editable installs with a boxed banner through Python's warnings;
# the build runs in pip's subprocess, which inherits PYTHONWARNINGS.
pip_install() {
    PYTHONWARNINGS=ignore PIP_NO_WARN_SCRIPT_LOCATION=1 \
        .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" >>"$log" 2>&1
}
target="."
if [ -n "$all_extras" ]; then
    target=".[$all_extras]"
fi
if { [ -n "$stamp_digest" ] || pip_install --upgrade pip; } && pip_install -e "$target"; then
    printf 'pyproject-sha256 %s\nextras %s\n' "$digest" "$all_extras" > "$STAMP.tmp"
    mv -f "$STAMP.tmp" "$STAMP"
    exit 0
fi
tail -n 15 "$log" >&2
echo >&2
echo "cannot install: no network? pip could not install Gambiarra Desktop's packages" \
     "(its last lines are above). Connect to the internet (or to your package mirror)" \
     "and run this again; once installed, the app starts offline." >&2
exit 1
