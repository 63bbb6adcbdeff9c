#!/bin/sh
# Add this unpacked Gambiarra Desktop to your own applications menu (no root needed).
# Run it again after moving the folder; "--remove" takes the entry away.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data="${XDG_DATA_HOME:-$HOME/.local/share}"
entry="$data/applications/gambiarra-desktop.desktop"
icon="$data/icons/hicolor/256x256/apps/gambiarra-desktop.png"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$entry" "$icon"
    echo "Removed Gambiarra Desktop from your applications menu."
    exit 0
fi
mkdir -p "$(dirname "$entry")" "$(dirname "$icon")"
cp "$here/gambiarra-desktop.png" "$icon"
sed -e "s|^Exec=.*|Exec=\"$here/gambiarra-desktop\"|" \
    -e "s|^Icon=.*|Icon=gambiarra-desktop|" \
    "$here/gambiarra-desktop.desktop" > "$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "Added Gambiarra Desktop to your applications menu ($entry)."
