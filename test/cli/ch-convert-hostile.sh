#!/bin/bash
# ch-convert on hostile archives (test/fixtures/hostile.py writes them, with
# the expected outcome of each). Each archive is converted to a directory
# and to a SquashFS file, each in a directory of its own next to a canary
# tree that symbolic links in the archives point at. Whatever the archive:
# no crash, nothing written outside the destination, the canary and the
# inputs unchanged. A refused archive exits 31 with an error that names it
# and leaves neither output nor temporary; an accepted one comes out
# neutralised (names inside, no devices, no setuid bits, links verbatim).
. "$CLI_LIB"
: "${CH_CONVERT:?}"
hostile_py=$(dirname "$CLI_LIB")/../fixtures/hostile.py

# A private $TMPDIR: ch-convert may use it, and must leave it empty.
export TMPDIR=$scratch/tmp
mkdir "$TMPDIR"
canary=$scratch/canary
mkdir -p "$canary/sub"
echo precious > "$canary/file"
echo deep > "$canary/sub/file"
chmod 750 "$canary/sub"
arch=$scratch/archives
if ! python3 "$hostile_py" --canary "$canary" "$arch" > "$scratch/hostile.log" 2>&1; then
    echo "Bail out! hostile.py failed: $(cat "$scratch/hostile.log")"
    exit 1
fi
count=$(wc -l < "$arch/MANIFEST")
[ "$count" -ge 35 ] && ok "hostile.py wrote $count archives" || not_ok "hostile.py wrote $count archives (want 35 or more)"

# What no conversion may change: the canary (contents, modes, times) and the inputs.
snapshot () {
    find "$canary" "$arch" -printf '%p %y %m %s %T@ %l\n' | sort
    find "$canary" -type f -exec md5sum {} + | sort
}
snap0=$(snapshot)
stamp=$scratch/stamp
start=$scratch/start
touch "$start"

# Entries written since the stamp anywhere in $scratch but the destination
# directory $1 (and run's own .out/.err), and any host path a link aimed at.
written_outside () {
    find "$scratch" -mindepth 1 -newer "$stamp" ! -path "$1" ! -path "$1/*" \
         ! -path "$scratch/.out" ! -path "$scratch/.err" ! -path "$TMPDIR" 2>/dev/null
    find "$scratch" "$TMPDIR" -name 'ESCAPED*' ! -path "$arch/*" 2>/dev/null
    ls -d /tmp/chute-hostile* 2>/dev/null
    ls -A "$TMPDIR" | sed 's|^|in $TMPDIR: |'
}

expect_rc () {  # RC WANT DESCRIPTION
    if [ "$1" = "$2" ]; then ok "$3"; return; fi
    local why=""
    [ "$1" -gt 128 ] && why=" (killed by signal $(($1 - 128)): a crash)"
    not_ok "$3" "expected: $2" "got:      $1$why" "stderr:   $err"
}

n=0
while IFS=$'\t' read -r -u 3 name expect desc; do
    n=$((n + 1))
    for kind in dir squash; do
        d=$scratch/out-$n-$kind
        mkdir "$d"
        echo sibling > "$d/sibling"
        if [ "$kind" = dir ]; then o=$d/img; else o=$d/img.sqfs; fi
        t="$name -> $kind"
        touch "$stamp"
        sleep 0.01   # file times are coarse: keep the stamp older than any write
        run "$CH_CONVERT" "$arch/$name" "$o"
        if [ "$expect" = error ]; then
            expect_rc "$rc" 31 "$t: refused, exit 31 ($desc)"
            like "$err" "error: .*$name" "$t: the error names the archive"
            is "$(ls -A "$d")" "sibling" "$t: no output and no temporary left"
        else
            expect_rc "$rc" 0 "$t: converted ($desc)"
            is "$(ls -A "$d")" "$(printf '%s\nsibling' "${o##*/}")" "$t: the output and nothing else"
        fi
        is "$(written_outside "$d")" "" "$t: nothing written outside the destination"
        is "$(cat "$d/sibling" 2>&1)|$(snapshot)" "sibling|$snap0" "$t: the canary, the inputs and a sibling file unchanged"
        if [ "$expect" = ok ] && [ "$rc" = 0 ]; then
            if [ "$kind" = dir ]; then
                where=$o
            else
                where=$d.listing
                if ! unsquashfs -lls "$o" > "$where" 2> "$d.unsquashfs-err"; then
                    not_ok "$t: unsquashfs reads the output" "$(cat "$d.unsquashfs-err")"
                    continue
                fi
            fi
            printf '%s' "$err" > "$d.err"
            while IFS=$'\t' read -r verdict what diag; do
                if [ "$verdict" = ok ]; then ok "$t: $what"; else not_ok "$t: $what" "$diag"; fi
            done < <(python3 "$hostile_py" --canary "$canary" --check "$name" "$kind" "$where" "$d.err" 2>&1 ||
                     printf 'not ok\tthe checker ran\tit failed\n')
        fi
    done
done 3< "$arch/MANIFEST"
is "$n" "$count" "every archive of the manifest was tried"

# Warnings: counted by default, each member named with -v, none with -qq.
v=$scratch/verbose; mkdir "$v"
run "$CH_CONVERT" -v "$arch/combo.tar.gz" "$v/img"
is "$rc" 0 "-v: converts"
like "$err" "null" "-v names the dropped device"
like "$err" "fifo" "-v names the dropped FIFO"
run "$CH_CONVERT" "$arch/combo.tar.gz" "$v/img2"
like "$err" "warning: .*2" "without -v, a warning counts the 2 dropped members"
unlike "$err" "abs/fifo" "without -v, the members are not named"
run "$CH_CONVERT" -qq "$arch/combo.tar.gz" "$v/img3"
is "$rc|$out|$err" "0||" "-qq: no warning, no summary"

# The same refusals when the format is given (no detection).
for name in dotdot-middle.tar symlink-dotdot-write.tar.gz hardlink-outside.tar; do
    d=$scratch/forced-$name; mkdir "$d"
    run "$CH_CONVERT" -i tar -o squash "$arch/$name" "$d/out"
    is "$rc|$(ls -A "$d")" "31|" "-i tar -o squash $name: refused, nothing left"
done

# (Other tests, and builds, of this user run meanwhile and write to /tmp:
# look for what the archives aim at and for ch-convert's temporaries.)
is "$(find /tmp -maxdepth 1 -user "$(id -u)" -newer "$start" \( -name '*hostile*' -o -name '*ch-convert*' \
       -o -name 'ESCAPED*' \) 2>/dev/null)" "" \
   "nothing new of this user's in /tmp that the archives aim at, and no ch-convert temporary"
done_testing
