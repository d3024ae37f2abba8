#!/bin/bash
# ch-run -b/--bind: sources, destinations, read-only binds, creation of
# missing destinations, and bad specifications.
. "$CLI_LIB"

data=$scratch/data; mkdir -p "$data/sub"; echo hello > "$data/file"
other=$scratch/other; mkdir -p "$other"; echo other > "$other/file"

run "$CH_RUN" -b "$data:/mnt/0" "$img" -- cat /mnt/0/file
is "$rc|$out" "0|hello" "-b SRC:DST binds a host directory"
run "$CH_RUN" --bind="$data:/mnt/0" "$img" -- sh -c 'echo written > /mnt/0/new'
is "$(cat "$data/new" 2>/dev/null)" "written" "binds are writable by default"
run "$CH_RUN" -b "$data:/mnt/0:ro" "$img" -- probe write /mnt/0/new2
is "$out" "EROFS" "-b SRC:DST:ro is read-only"
run "$CH_RUN" -b "$data:/mnt/0:ro" "$img" -- cat /mnt/0/file
is "$out" "hello" "a read-only bind is readable"
run "$CH_RUN" -b "$data:/mnt/0:rw" "$img" -- probe write /mnt/0/new3
is "$out" "ok" "-b SRC:DST:rw is writable"

# A read-only bind stays read-only below its own submounts.
run "$CH_RUN" -b "$data:/mnt/0" -b "$other:/mnt/0/sub" -b "$data:/mnt/1:ro" "$img" -- sh -c 'cat /mnt/0/sub/file; cat /mnt/1/file'
is "$out" "other
hello" "several binds apply in order, a later one inside an earlier one"

run "$CH_RUN" -b "$data:/mnt/0" -b "$other:/mnt/1" "$img" -- sh -c 'cat /mnt/0/file /mnt/1/file'
is "$out" "hello
other" "two binds"

# Same-path binds and missing destinations. The scratch directory is under
# the host's /tmp, which the container shows at /tmp: use one in /var/tmp.
vdata=$(mktemp -d /var/tmp/chute-bind.XXXXXX)
trap 'rm -rf "$vdata"; cleanup' EXIT
echo hello > "$vdata/file"
data=$vdata
run "$CH_RUN" -b "$data" "$img" -- cat "$data/file"
is "$rc" 31 "a missing destination in a read-only image is an error"
like "$err" "can't create bind destination $data: the image is read-only" "the error names the destination and says why"
[ -e "$imgdir$data" ] && not_ok "nothing is created in a read-only image" || ok "nothing is created in a read-only image"

run "$CH_RUN" $write -b "$data" "$img" -- cat "$data/file"
is "$rc|$out" "0|hello" "-b SRC binds at the same path; $write creates the destination"
if [ "$kind" = dir ]; then
    [ -d "$imgdir$data" ] && ok "the destination was created inside the image" || not_ok "the destination was created inside the image"
fi
data=$scratch/data

echo content > "$scratch/afile"
run "$CH_RUN" $write -b "$scratch/afile:/etc/afile" "$img" -- cat /etc/afile
is "$rc|$out" "0|content" "a file bind creates an empty file as its destination"
if [ "$kind" = dir ]; then
    [ -f "$imgdir/etc/afile" ] && ok "the file destination is inside the image" || not_ok "the file destination is inside the image"
fi
run "$CH_RUN" -b "$scratch/afile:/mnt/0" "$img" -- true
is "$rc" 31 "binding a file onto a directory is an error"
like "$err" "one is a directory, the other is not" "the error says why"

# A missing destination under another bind is not created (it would land on
# the host).
run "$CH_RUN" $write -b "$data:/mnt/0" -b "$other:/mnt/0/newdir" "$img" -- true
is "$rc" 31 "a destination under another bind is not created"
like "$err" "under a bind mount" "the error says why"
[ -e "$data/newdir" ] && not_ok "nothing was created in the host directory" || ok "nothing was created in the host directory"

# --- The PMIx server's directory (Slurm puts it under its spool directory)
# is bound at its own path, even where the read-only image lacks the mount
# point: the nearest existing ancestor (/var, which has only spool/) is
# covered, showing what it held; nothing is written to the image.
pmix=$(mktemp -d /var/tmp/chute-pmix.XXXXXX)
echo from-host > "$pmix/seg"
run env PMIX_SERVER_TMPDIR="$pmix" "$CH_RUN" "$img" -- sh -c \
    "cat $pmix/seg && echo from-job > $pmix/job && ls /var | tr '\n' ' ' && touch /var/new 2>/dev/null || echo var-read-only"
is "$rc|$out" "0|from-host
spool tmp var-read-only" "PMIX_SERVER_TMPDIR is bound at its path; the image's /var still shows its entries and stays read-only"
is "$(cat "$pmix/job" 2>/dev/null)" "from-job" "the job can write in the PMIx directory"
[ -e "$imgdir$pmix" ] && not_ok "nothing was created in the image" || ok "nothing was created in the image"
run env PMIX_SYSTEM_TMPDIR="$pmix" "$CH_RUN" "$img" -- cat "$pmix/seg"
is "$rc|$out" "0|from-host" "PMIX_SYSTEM_TMPDIR too"
run env PMIX_SERVER_TMPDIR="$pmix" "$CH_RUN" -v "$img" -- true
like "$err" "cover: tmpfs on /var" "-v tells about the cover"
rm -rf "$pmix"
run env PMIX_SERVER_TMPDIR="$scratch" "$CH_RUN" -v "$img" -- true
is "$rc" 0 "a PMIx directory under /tmp (bound already) works"
unlike "$err" "PMIX_SERVER_TMPDIR" "and is not bound a second time"
run env PMIX_SERVER_TMPDIR="$scratch/none" "$CH_RUN" "$img" -- true
is "$rc" 0 "a PMIx directory that does not exist is ignored"
if [ -d /var/spool/slurmd ]; then
    run "$CH_RUN" "$img" -- test -d /var/spool/slurmd
    is "$rc" 0 "the host's /var/spool/slurmd appears although the image lacks it"
else
    skip "the host's /var/spool/slurmd appears although the image lacks it" "no /var/spool/slurmd on this host"
fi

# Bad specifications: each exits 31 before any namespace exists.
check_bad () {  # SPEC PATTERN DESCRIPTION
    run "$CH_RUN" -v -b "$1" "$img" -- true
    is "$rc" 31 "$3: exit 31"
    like "$err" "$2" "$3: message"
    unlike "$err" "namespaces:" "$3: fails before entering namespaces"
}
check_bad "$scratch/nope:/mnt/0" "can't bind: source not found: $scratch/nope: No such file or directory" "missing source"
check_bad "$data:mnt/0" "DST \"mnt/0\" is not absolute" "relative destination"
check_bad "$data:/" "DST must not be \"/\"" "destination /"
check_bad "$data:/mnt/../etc" "contains \"..\"" "destination with .."
check_bad "$data:/mnt/0:rx" "unknown option \"rx\"" "unknown bind option"
check_bad "$data:/mnt/0:ro:x" "too many colons" "too many colons"
check_bad ":/mnt/0" "SRC is empty" "empty source"
check_bad "$data:" "DST is empty" "empty destination"

done_testing
