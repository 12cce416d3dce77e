#!/usr/bin/env bash
# Smoke-test built installers as a new user would meet them: offline, with a fresh HOME.
#
#   bash packaging/smoke.sh dist/wegen_0.1.0_amd64.deb dist/wegen-0.1.0-linux-x86_64-cpu.tar.zst
#
# A .deb is installed with dpkg into a throwaway root (its own dpkg database: this machine's
# system is not touched), an archive is unpacked into a throwaway folder. Then, for each:
# `wegen-cli info`; `wegen-cli generate "a red circle" --seed 1 -o out.png` (a PNG with WeGen's
# metadata); the window starts offscreen, stays up 10 s and quits cleanly; nothing was written
# into the install folder (user data goes to the XDG folders); and the .deb is removed again,
# leaving no file behind. Timings (cold, first run) are printed as `smoke-time NAME SECONDS`.
set -euo pipefail

exec 3>&1
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
note() { echo "smoke: $*"; }

# No network for the programs under test, where this machine lets us make a namespace.
if unshare -rn true 2>/dev/null; then
    OFFLINE=(unshare -rn)
    note "programs run with no network (unshare -rn)"
else
    OFFLINE=()
    note "cannot make a network namespace here: programs run with the network as it is"
fi

timed() {  # timed NAME COMMAND...: run it, print its wall time, return its status
    local name=$1 start end status=0
    shift
    start=$(date +%s.%N)
    "$@" || status=$?
    end=$(date +%s.%N)
    echo "smoke-time $name $(echo "$end - $start" | bc)" >&3  # not into a redirected output
    return $status
}

check_png() {  # check_png FILE: a PNG with the `wegen` metadata record
    python3 - "$1" <<'EOF'
import json, struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, chunks = 8, {}
while pos < len(data):
    (length,) = struct.unpack(">I", data[pos : pos + 4])
    kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
    if kind == b"iTXt":
        key, rest = body.split(b"\0", 1)
        compressed, rest = rest[0], rest[2:]
        text = rest.split(b"\0", 2)[2]
        chunks[key.decode()] = zlib.decompress(text) if compressed else text
    pos += 12 + length
record = json.loads(chunks["wegen"])
assert record["prompt"] == "a red circle" and record["settings"]["seed"] == 1, record
print(f"smoke: {sys.argv[1]}: PNG with the wegen record (model {record.get('model')})")
EOF
}

exercise() {  # exercise BIN_DIR INSTALL_DIR: the user's first session
    local bin=$1 install=$2 home
    home=$(mktemp -d)
    local before after
    before=$(find "$install" -printf '%P %s\n' | sort | md5sum)
    run() { env -i PATH=/usr/bin:/bin HOME="$home" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
        "${OFFLINE[@]}" "$@"; }
    timed cli-info run "$bin/wegen-cli" info >"$home/info.txt" || fail "wegen-cli info"
    grep -q "wegen-tiny" "$home/info.txt" || fail "wegen-cli info does not name the bundled model"
    timed cli-generate run "$bin/wegen-cli" generate "a red circle" --seed 1 -o "$home/out.png" \
        || fail "wegen-cli generate"
    check_png "$home/out.png"
    # cold start to a painted window and a loaded model (the window closes itself then)
    timed gui-start run "$bin/wegen" --report-start >"$home/start.txt" 2>&1 \
        || { cat "$home/start.txt"; fail "the window did not start"; }
    grep -q "first-paint" "$home/start.txt" || fail "the window never painted"
    grep -q "model ready" "$home/start.txt" || { cat "$home/start.txt"; fail "the model did not load"; }
    # up 10 s, then a clean quit
    local start end
    start=$(date +%s)
    run "$bin/wegen" --quit-after 10000 || fail "the window did not quit cleanly"
    end=$(date +%s)
    [ $((end - start)) -ge 10 ] || fail "the window was up less than 10 s"
    note "the window stayed up $((end - start)) s and quit with 0"
    [ -d "$home/.local/share/wegen" ] || fail "no user data folder in \$HOME/.local/share/wegen"
    after=$(find "$install" -printf '%P %s\n' | sort | md5sum)
    [ "$before" = "$after" ] || fail "something was written into the install folder $install"
    rm -rf "$home"
}

smoke_deb() {
    local deb=$1 root package
    root=$(mktemp -d)
    mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
    touch "$root/var/lib/dpkg/status"
    package=$(dpkg-deb --field "$deb" Package)
    # --force-depends: the throwaway root has no dpkg record of this system's libraries
    timed deb-install dpkg --root="$root" --force-depends --force-script-chrootless \
        -i "$deb" >"$root/dpkg.log" 2>&1 || { cat "$root/dpkg.log"; fail "dpkg -i $deb"; }
    rm "$root/dpkg.log"
    exercise "$root/usr/bin" "$root/usr/lib/wegen"
    dpkg --root="$root" --force-depends --force-script-chrootless -r "$package" >/dev/null \
        || fail "dpkg -r $package"
    local left
    left=$(find "$root" -mindepth 1 -not -path "$root/var/lib/dpkg*" -not -type d)
    [ -z "$left" ] || fail "files left behind after dpkg -r: $left"
    [ ! -e "$root/usr/lib/wegen" ] || fail "$root/usr/lib/wegen left behind after dpkg -r"
    note "$deb: installed, used, removed; nothing left behind"
    rm -rf "$root"
}

smoke_archive() {
    local archive=$1 dir top
    dir=$(mktemp -d)
    timed archive-unpack tar --zstd -xf "$archive" -C "$dir" || fail "unpacking $archive"
    top=$(find "$dir" -mindepth 1 -maxdepth 1 -type d)
    [ -x "$top/wegen" ] && [ -x "$top/wegen-cli" ] || fail "no wegen and wegen-cli in $top"
    exercise "$top" "$top"
    note "$archive: unpacked and used"
    rm -rf "$dir"
}

[ $# -gt 0 ] || { echo "usage: $0 ARTIFACT.deb|ARTIFACT.tar.zst ..." >&2; exit 2; }
for artifact in "$@"; do
    case "$artifact" in
        *.deb) smoke_deb "$artifact" ;;
        *.tar.zst) smoke_archive "$artifact" ;;
        *) fail "$artifact: not a .deb or a .tar.zst" ;;
    esac
done
note "all passed"
