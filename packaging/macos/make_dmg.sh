#!/usr/bin/env bash
# Build WeGen.app and a .dmg on macOS (arm64 or x86_64):
#
#   python packaging/build.py bundle && bash packaging/macos/make_dmg.sh [cpu]
#
# PyInstaller's BUNDLE step (packaging/wegen.spec) makes WeGen.app beside the one-folder bundle;
# this wraps it in a compressed disk image with a link to /Applications. Signing and
# notarisation need the project's Apple Developer ID: set CODESIGN_IDENTITY to sign.
# Not built or run on the project's Linux machines: .github/workflows/installers.yml builds it
# on a hosted macOS runner. User data lives in ~/Library/Application Support/WeGen.
set -euo pipefail
variant=${1:-cpu}
root=$(cd "$(dirname "$0")/../.." && pwd)
app="$root/build/packaging/$variant/dist/WeGen.app"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml")
[ -d "$app" ] || { echo "no $app: run python packaging/build.py bundle first" >&2; exit 1; }
if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --deep --force --options runtime --sign "$CODESIGN_IDENTITY" "$app"
fi
stage=$(mktemp -d)
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
mkdir -p "$root/dist"
out="$root/dist/wegen-$version-macos-$(uname -m)-$variant.dmg"
hdiutil create -volname "WeGen $version" -srcfolder "$stage" -ov -format UDZO "$out"
rm -rf "$stage"
echo "$out"
