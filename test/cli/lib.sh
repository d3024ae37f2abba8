# Shared helpers for chute's end-to-end tests: TAP output, assertions, and a
# small busybox image built at test time. Sourced by each test/cli/*.sh.
#
# Environment (set by meson): CH_RUN, CH_CHECKNS, PROBE (absolute paths).
# Optional: CHUTE_TEST_SUID_PROBE, a root-owned setuid copy of the probe that
# the test runner makes when it runs as root.

set -u
: "${CH_RUN:?}" "${PROBE:?}"

if [ "$(id -u)" = 0 ]; then
    # Containers must be tested as an ordinary user: root hides their bugs.
    echo "1..0 # SKIP running as root; run the tests as an unprivileged user (test/run-all does)"
    exit 0
fi

tap_n=0
tap_failed=0
scratch=$(mktemp -d "${TMPDIR:-/tmp}/chute-test.XXXXXX")
cleanup () {
    chmod -R u+rwx "$scratch" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

ok () {  # DESCRIPTION
    tap_n=$((tap_n + 1))
    echo "ok $tap_n - $1"
}
not_ok () {  # DESCRIPTION [DIAGNOSTIC...]
    tap_n=$((tap_n + 1))
    tap_failed=$((tap_failed + 1))
    echo "not ok $tap_n - $1"
    shift
    local line
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/#   /'
    done
}
skip () {  # DESCRIPTION REASON
    tap_n=$((tap_n + 1))
    echo "ok $tap_n - $1 # SKIP $2"
}
done_testing () {
    echo "1..$tap_n"
    [ "$tap_failed" -eq 0 ]
    exit $?
}

# run CMD...: run it, keeping its status in $rc, stdout in $out, stderr in $err.
run () {
    "$@" >"$scratch/.out" 2>"$scratch/.err"
    rc=$?
    out=$(cat "$scratch/.out")
    err=$(cat "$scratch/.err")
}

is () {  # ACTUAL EXPECTED DESCRIPTION
    if [ "$1" = "$2" ]; then ok "$3"; else
        not_ok "$3" "expected: $2" "got:      $1" "stderr:   ${err:-}"
    fi
}
isnt () {  # ACTUAL UNEXPECTED DESCRIPTION
    if [ "$1" != "$2" ]; then ok "$3"; else not_ok "$3" "got the unexpected: $1"; fi
}
like () {  # TEXT EXTENDED-REGEX DESCRIPTION
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok "$3"; else
        not_ok "$3" "expected to match: $2" "got: $1"
    fi
}
unlike () {  # TEXT EXTENDED-REGEX DESCRIPTION
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        not_ok "$3" "expected not to match: $2" "got: $1"
    else ok "$3"; fi
}

# mkimage DIR: a small image: busybox-static with its applets, the probe,
# and the files and directories ch-run expects (empty /etc/passwd and
# /etc/group, /etc/hosts, /etc/resolv.conf, /mnt/0-9, /ch/environment).
mkimage () {
    local img=$1 bb a
    bb=$(command -v busybox) || { echo "Bail out! busybox not found (apt-get install busybox-static)"; exit 1; }
    mkdir -p "$img"/{bin,dev,etc,home,mnt,proc,sys,tmp,usr/bin,root,ch,var/spool}
    for a in 0 1 2 3 4 5 6 7 8 9; do mkdir -p "$img/mnt/$a"; done
    cp "$bb" "$img/bin/busybox"
    for a in $("$bb" --list); do
        [ -e "$img/bin/$a" ] || ln -s busybox "$img/bin/$a"
    done
    cp "$PROBE" "$img/bin/probe"
    : > "$img/etc/passwd"
    : > "$img/etc/group"
    : > "$img/etc/hosts"
    : > "$img/etc/resolv.conf"
    printf 'IMG_A=from-image\nIMG_PATH=/image/bin:$PATH\n' > "$img/ch/environment"
}

# The kind of image the tests run on: "dir" (default) or "squash" (the same
# tree as a SquashFS file, compressed with $SQUASH_COMP, default gzip).
kind=${CHUTE_IMAGE_KIND:-dir}
case $kind in
    dir)    write=-w ;;   # how to make the image writable for a test
    squash) write=-W ;;
    *) echo "Bail out! unknown CHUTE_IMAGE_KIND: $kind"; exit 1 ;;
esac

# image_of DIR: the image to give ch-run for the tree DIR: DIR itself, or a
# SquashFS file made from it.
image_of () {
    if [ "$kind" = squash ]; then
        mksquashfs "$1" "$1.sqfs" -comp "${SQUASH_COMP:-gzip}" -noappend -quiet -no-progress \
            >/dev/null || { echo "Bail out! mksquashfs failed on $1"; exit 1; }
        echo "$1.sqfs"
    else
        echo "$1"
    fi
}

imgdir=$scratch/img
mkimage "$imgdir"
img=$(image_of "$imgdir")
