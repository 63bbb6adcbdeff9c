#!/usr/bin/env bash
# Build the macOS download: "Gambiarra Desktop.app", smoke-tested, inside a .dmg.
#
#   bash packaging/build-macos.sh [OUT_DIR]      (default OUT_DIR: dist/)
#
# Runs in .github/workflows/release.yml on macos-latest; the .app is built for the
# runner's architecture and ad-hoc signed by PyInstaller (not notarized: the first
# launch needs right-click › Open, as the README says).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)"
PY="${GAMBIARRA_PYTHON:-python3}"
"$PY" -m pip install --quiet -e ".[package]"
VERSION="$("$PY" -c 'import gambiarra_desktop; print(gambiarra_desktop.__version__)')"
export GAMBIARRA_VERSION="$VERSION" GAMBIARRA_ICONS="$PWD/build/icons"

"$PY" packaging/tools/icons.py --out "$GAMBIARRA_ICONS"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath build/pyinstaller --distpath build/bundle packaging/pyinstaller/gambiarra.spec
APP="build/bundle/Gambiarra Desktop.app"
QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/gambiarra-desktop" --self-test
"$APP/Contents/MacOS/gambiarra" --version

staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
ditto "$APP" "$staging/Gambiarra Desktop.app"
ln -s /Applications "$staging/Applications"  # Drag the app onto this to install it.
DMG="$OUT/gambiarra-desktop-$VERSION-macos-$(uname -m).dmg"
hdiutil create -volname "Gambiarra Desktop" -srcfolder "$staging" -fs HFS+ \
    -format UDZO -ov "$DMG"
echo "build-macos: $DMG"
