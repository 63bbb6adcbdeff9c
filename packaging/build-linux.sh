#!/usr/bin/env bash
# Build the Linux downloads: the PyInstaller bundle, a .deb and a portable .tar.gz.
#
#   bash packaging/build-linux.sh [OUT_DIR]      (default OUT_DIR: dist/)
#
# On a fresh Debian/Ubuntu machine this is the only command needed: it sets up .venv
# (scripts/setup.sh) with PyInstaller, renders the icons, bundles the app and packs it.
# The same script runs in .github/workflows/release.yml and in tests/packaging/.
# Needs the Qt system libraries the bundle links against (listed in .ci/run) and dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)"
WORK="${GAMBIARRA_BUILD_DIR:-build}"
PY="${GAMBIARRA_PYTHON:-}"
if [ -z "$PY" ]; then
    bash scripts/setup.sh package
    PY=.venv/bin/python
fi
VERSION="$("$PY" -c 'import gambiarra_desktop; print(gambiarra_desktop.__version__)')"
export GAMBIARRA_VERSION="$VERSION" GAMBIARRA_ICONS="$WORK/icons"

started=$SECONDS
"$PY" packaging/tools/icons.py --out "$GAMBIARRA_ICONS"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath "$WORK/pyinstaller" --distpath "$WORK/bundle" \
    packaging/pyinstaller/gambiarra.spec
bundled=$SECONDS
"$PY" packaging/tools/linux_packages.py --bundle "$WORK/bundle/gambiarra-desktop" \
    --icons "$GAMBIARRA_ICONS" --out "$OUT" --version "$VERSION"
echo "build-linux: bundle in $((bundled - started)) s, packages in $((SECONDS - bundled)) s;" \
     "bundle $(du -sm "$WORK/bundle/gambiarra-desktop" | cut -f1) MB at $WORK/bundle/gambiarra-desktop"
