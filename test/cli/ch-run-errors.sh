#!/bin/bash
# ch-run's errors: each has its own message in Charliecloud's format, names
# what is wrong, and exits 31 (49 when the command can't be executed).
. "$CLI_LIB"

fmt='^ch-run\[[0-9]+\]: error: '

run "$CH_RUN" "$img" -- /nonexistent
is "$rc" 49 "a missing command exits 49"
like "$err" "${fmt}can't execve\(2\): /nonexistent: No such file or directory" "the exec error names the command and errno"
run "$CH_RUN" -qqq "$img" -- /nonexistent
is "$rc" 49 "with -qqq a missing command still exits 49"
like "$err" "can't execve\(2\): /nonexistent" "with -qqq the exec error is still printed"
printf '#!/bin/sh\n' > "$scratch/noexec"
chmod 644 "$scratch/noexec"
run "$CH_RUN" -b "$scratch/noexec:/etc/hosts" "$img" -- /etc/hosts
is "$rc" 49 "a file that is not executable exits 49"
like "$err" "can't execve\(2\): /etc/hosts: Permission denied" "the error says permission denied"
run "$CH_RUN" "$img" -- nosuchcommand
is "$rc" 49 "a command not found on PATH exits 49"
like "$err" "can't execve\(2\): nosuchcommand: No such file or directory" "the error names the command"

check () {  # EXPECTED-RC PATTERN DESCRIPTION -- ARGS...
    local want=$1 pat=$2 desc=$3; shift 4
    run "$CH_RUN" -v "$@"
    is "$rc" "$want" "$desc: exit $want"
    like "$err" "$pat" "$desc: message"
    unlike "$err" "namespaces:" "$desc: fails before entering namespaces"
}

check 31 "${fmt}can't find image: $scratch/missing: No such file or directory" \
      "missing image" -- "$scratch/missing" -- true
echo "not an image" > "$scratch/textfile"
check 31 "${fmt}unknown image type \(not a directory, not SquashFS\): $scratch/textfile" \
      "a file that is not an image" -- "$scratch/textfile" -- true
: > "$scratch/empty"
check 31 "unknown image type.*: $scratch/empty" "an empty file" -- "$scratch/empty" -- true
printf 'hsqs' > "$scratch/fake.sqfs"
check 31 "invalid SquashFS image: $scratch/fake.sqfs: truncated" \
      "a file with only the SquashFS magic" -- "$scratch/fake.sqfs" -- true
echo x > "$scratch/unreadable"; chmod 000 "$scratch/unreadable"
check 31 "can't open image: $scratch/unreadable: Permission denied" \
      "an unreadable image file" -- "$scratch/unreadable" -- true

run "$CH_RUN"
is "$rc" 31 "no arguments exits 31"
like "$err" "usage: ch-run" "no arguments prints usage"
like "$err" "IMAGE and/or COMMAND not specified" "no arguments says what is missing"
run "$CH_RUN" "$img"
is "$rc" 31 "no command exits 31"
like "$err" "IMAGE and/or COMMAND not specified" "no command says what is missing"
run "$CH_RUN" "$img" --
is "$rc" 31 "an empty command after -- exits 31"

check 31 "${fmt}unknown option: \"--bogus\"" "unknown long option" -- --bogus "$img" -- true
check 31 "${fmt}unknown option: \"-Z\"" "unknown short option" -- -Z "$img" -- true
check 31 "option requires an argument: \"--bind\"" "missing option argument" -- "$img" --bind
check 31 "--uid: not a valid id: \"abc\"" "bad --uid" -- --uid=abc "$img" -- true
check 31 "--gid: not a valid id: \"-1\"" "negative --gid" -- -g -1 "$img" -- true
check 31 "--uid: not a valid id: \"4294967295\"" "--uid out of range" -- -u 4294967295 "$img" -- true
check 31 "--cd: empty directory" "empty --cd" -- --cd= "$img" -- true
check 31 "--storage: empty directory" "empty --storage" -- --storage= "$img" -- true

# Images missing what ch-run needs.
nodev=$scratch/nodev; cp -a "$imgdir" "$nodev"; rmdir "$nodev/dev"; nodev=$(image_of "$nodev")
run "$CH_RUN" "$nodev" -- true
is "$rc" 31 "an image without /dev exits 31"
like "$err" "image has no /dev" "the error names /dev"
notmp=$scratch/notmp; cp -a "$imgdir" "$notmp"; rmdir "$notmp/tmp"; notmp=$(image_of "$notmp")
run "$CH_RUN" "$notmp" -- true
is "$rc" 31 "an image without /tmp exits 31"
like "$err" "image has no /tmp" "the error names /tmp"
nopw=$scratch/nopw; cp -a "$imgdir" "$nopw"; rm "$nopw/etc/passwd"; nopw=$(image_of "$nopw")
run "$CH_RUN" "$nopw" -- true
is "$rc" 0 "an image without /etc/passwd still runs"
like "$err" "warning: image has no /etc/passwd: not replaced" "and says /etc/passwd was not replaced"

# Environment the launcher itself needs.
run env -u USER "$CH_RUN" "$img" -- true
is "$rc" 0 "an unset \$USER falls back to the user database"
run env -u HOME "$CH_RUN" --home "$img" -- true
is "$rc" 31 "--home with \$HOME unset exits 31"
like "$err" "--home: \\\$HOME not set" "the error names \$HOME"
run env HOME="$scratch/nohome" "$CH_RUN" --home "$img" -- true
is "$rc" 31 "--home with a missing \$HOME exits 31"
like "$err" "--home: \\\$HOME is not a directory: $scratch/nohome" "the error names the directory"
run env TMPDIR="$scratch/notmpdir" "$CH_RUN" "$img" -- true
is "$rc" 31 "a missing \$TMPDIR exits 31"
like "$err" "can't bind host temporary directory: $scratch/notmpdir" "the error names \$TMPDIR"

done_testing
