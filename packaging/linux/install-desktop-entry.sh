#!/bin/sh
# Adds WeGen to your application menu (for you only), from wherever this archive was unpacked.
# Undo: sh install-desktop-entry.sh --remove
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
id=org.wegen.WeGen
if [ "${1:-}" = "--remove" ]; then
    rm -f "$data/applications/$id.desktop" "$data/icons/hicolor/scalable/apps/$id.svg"
    echo "WeGen removed from the application menu (your images and chats stay in $data/wegen)."
    exit 0
fi
mkdir -p "$data/applications" "$data/icons/hicolor/scalable/apps"
cp "$here/share/icons/hicolor/scalable/apps/$id.svg" "$data/icons/hicolor/scalable/apps/"
sed "s|^Exec=wegen|Exec=\"$here/wegen\"|" "$here/share/applications/$id.desktop" \
    > "$data/applications/$id.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
echo "WeGen is in your application menu. Start it from there, or run $here/wegen"
