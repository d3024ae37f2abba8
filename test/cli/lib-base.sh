# Helpers for chute's end-to-end tests that need neither a scratch
# directory nor an unprivileged user: TAP output, assertions, and mkimage.
# Sourced by lib.sh, and by the tests that run as root to switch between
# test users.

tap_n=0
tap_failed=0
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

# held PATH: whether a process that this user can see has PATH open or
# mapped.
held () {
    [ -n "$(find /proc/[0-9]*/fd -lname "$1" 2>/dev/null | head -n 1)" ] \
        || grep -qsF -- " $1" /proc/[0-9]*/maps
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
