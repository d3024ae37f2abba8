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

. "$(dirname "${BASH_SOURCE[0]}")/lib-base.sh"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/chute-test.XXXXXX")
cleanup () {
    chmod -R u+rwx "$scratch" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

# run CMD...: run it, keeping its status in $rc, stdout in $out, stderr in $err.
run () {
    "$@" >"$scratch/.out" 2>"$scratch/.err"
    rc=$?
    out=$(cat "$scratch/.out")
    err=$(cat "$scratch/.err")
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
