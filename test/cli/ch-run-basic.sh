#!/bin/bash
# ch-run on a directory image: namespaces, identity, read-only root, default
# binds, passwd, working directory, quiet/verbose, version, features, storage.
. "$CLI_LIB"

me_uid=$(id -u); me_gid=$(id -g); me_name=$(id -un)

run "$CH_RUN" "$img" -- /bin/true
is "$rc" 0 "true runs in the image"

run "$CH_RUN" "$img" -- probe exit 7
is "$rc" 7 "the job's exit status is ch-run's"

run "$CH_RUN" "$img" -- probe kill 15 2>/dev/null
is "$rc" 143 "a job killed by SIGTERM shows as 128+15"

"$CH_RUN" "$img" -- sh -c 'echo $$ $PPID' > "$scratch/pid" 2>/dev/null &
launcher=$!
wait $launcher
read -r job_pid job_ppid < "$scratch/pid"
if [ "$kind" = dir ]; then
    is "$job_pid" "$launcher" "the job replaces the launcher (same PID, no supervisor)"
else
    is "$job_ppid" "$launcher" "the launcher stays as the job's parent, serving the image"
fi

run "$CH_RUN" "$img" -- probe ids
is "$out" "uid=$me_uid gid=$me_gid euid=$me_uid egid=$me_gid groups=$me_gid" \
   "default ids are the caller's; supplementary groups are dropped"

run "$CH_RUN" -u 0 -g 0 "$img" -- probe ids
is "$out" "uid=0 gid=0 euid=0 egid=0 groups=0" "-u 0 -g 0 maps the caller to root"

run "$CH_RUN" --uid=1234 --gid=5678 "$img" -- probe ids
is "$out" "uid=1234 gid=5678 euid=1234 egid=5678 groups=5678" "--uid/--gid choose the container ids"

run "$CH_RUN" -u 1234 "$img" -- cat /proc/self/uid_map
like "$out" "^ *1234 +$me_uid +1$" "exactly one uid is mapped, container to caller"
is "$(printf '%s\n' "$out" | wc -l)" 1 "the uid map has one line"

run "$CH_RUN" "$img" -- cat /proc/self/setgroups
is "$out" "deny" "setgroups(2) is denied"

run "$CH_RUN" "$img" -- probe setuid 0
like "$out" "^(EINVAL|EPERM)$" "the job cannot become root (uid 0 is not mapped)"

host_userns=$(readlink /proc/self/ns/user); host_mntns=$(readlink /proc/self/ns/mnt)
run "$CH_RUN" "$img" -- readlink /proc/self/ns/user
isnt "$out" "$host_userns" "the job is in a new user namespace"
run "$CH_RUN" "$img" -- readlink /proc/self/ns/mnt
isnt "$out" "$host_mntns" "the job is in a new mount namespace"

run "$CH_RUN" "$img" -- probe status NoNewPrivs
like "$out" "NoNewPrivs:[[:space:]]+1" "no_new_privs is set before exec"

# Read-only image unless -w.
run "$CH_RUN" "$img" -- probe write /newfile
is "$out" "EROFS" "the image root is read-only by default"
[ -e "$imgdir/newfile" ] && not_ok "nothing was written into the image" || ok "nothing was written into the image"
run "$CH_RUN" $write "$img" -- probe write /newfile
is "$out" "ok" "$write makes the image writable"
if [ "$kind" = dir ]; then
    [ -e "$imgdir/newfile" ] && ok "-w writes land in the image directory" || not_ok "-w writes land in the image directory"
    rm -f "$imgdir/newfile"
    run "$CH_RUN" -W "$img" -- sh -c 'echo fake > /fakefile && cat /fakefile'
    is "$out" "fake" "-W makes a directory image writable too"
    [ -e "$imgdir/fakefile" ] && not_ok "-W writes do not reach the image" || ok "-W writes do not reach the image"
else
    run "$CH_RUN" -w "$img" -- true
    is "$rc" 31 "-w on a SquashFS image is an error"
    like "$err" "SquashFS images are read-only" "the -w error says why"
fi
run "$CH_RUN" "$img" -- test -e /newfile
is "$rc" 1 "what -W wrote is gone at the next run"
run "$CH_RUN" --write-fake=16m "$img" -- sh -c 'dd if=/dev/zero of=/big bs=1M count=32 2>&1'
like "$out" "No space left on device" "--write-fake=SIZE limits the writable layer"
run "$CH_RUN" --write-fake=lots "$img" -- true
is "$rc" 31 "a bad --write-fake size exits 31"
like "$err" "--write-fake: invalid size \"lots\"" "the error names the size"
run "$CH_RUN" "$img" -- grep -E ' / ro[, ]' /proc/self/mountinfo
is "$rc" 0 "mountinfo shows / read-only"

# Default binds.
run "$CH_RUN" "$img" -- sh -c 'echo x > /dev/null && test -c /dev/null'
is "$rc" 0 "/dev is the host's (/dev/null writable)"
run "$CH_RUN" "$img" -- test -e /proc/self/status
is "$rc" 0 "/proc is mounted"
run "$CH_RUN" "$img" -- test -d /sys/class
is "$rc" 0 "/sys is mounted"
run "$CH_RUN" "$img" -- probe write /sys/kernel/chute-test
is "$out" "EROFS" "/sys is read-only"
run "$CH_RUN" "$img" -- sh -c 'grep -E " /sys/fs/cgroup[^ ]* rw[, ]" /proc/self/mountinfo'
is "$out" "" "mounts under /sys are read-only too"
if [ -f /etc/hosts ]; then
    run "$CH_RUN" "$img" -- cat /etc/hosts
    is "$out" "$(cat /etc/hosts)" "/etc/hosts is the host's"
    run "$CH_RUN" $write "$img" -- probe write /etc/hosts
    is "$out" "EROFS" "/etc/hosts is read-only even with $write"
else
    skip "/etc/hosts is the host's" "host has no /etc/hosts"
    skip "/etc/hosts is read-only even with $write" "host has no /etc/hosts"
fi
if [ -f /etc/resolv.conf ]; then
    run "$CH_RUN" "$img" -- cat /etc/resolv.conf
    is "$out" "$(cat /etc/resolv.conf)" "/etc/resolv.conf is the host's"
else
    skip "/etc/resolv.conf is the host's" "host has no /etc/resolv.conf"
fi

# /tmp: the host's $TMPDIR (or /tmp), or private with -t.
hosttmp=$scratch/hosttmp; mkdir "$hosttmp"
run env TMPDIR="$hosttmp" "$CH_RUN" "$img" -- sh -c 'echo hi > /tmp/from-job'
is "$(cat "$hosttmp/from-job" 2>/dev/null)" "hi" "host \$TMPDIR is bound at /tmp"
run env TMPDIR="$hosttmp" "$CH_RUN" -t "$img" -- sh -c 'echo hi > /tmp/private && cat /tmp/private && ls /tmp'
is "$out" "hi
private" "-t gives an empty, writable private /tmp"
[ -e "$hosttmp/private" ] && not_ok "-t writes stay out of the host" || ok "-t writes stay out of the host"
run env TMPDIR="$hosttmp" "$CH_RUN" --private-tmp "$img" -- ls /tmp
is "$out" "" "--private-tmp does not show the host's files"

# --home
fakehome=$scratch/home-$me_name; mkdir "$fakehome"; echo mine > "$fakehome/file"
run env HOME="$fakehome" "$CH_RUN" --home "$img" -- sh -c 'cat /home/'"$me_name"'/file; echo $HOME; echo x > $HOME/new'
is "$out" "mine
/home/$me_name" "--home binds \$HOME at /home/\$USER and sets HOME"
is "$(cat "$fakehome/new" 2>/dev/null)" "x" "--home is writable and lands in the host home"
run env HOME="$fakehome" "$CH_RUN" --home "$img" -- grep "^$me_name:" /etc/passwd
like "$out" ":/home/$me_name:/bin/sh$" "--home puts /home/\$USER in /etc/passwd"

# passwd and group
run "$CH_RUN" "$img" -- cat /etc/passwd
expected_gecos=$(getent passwd "$me_uid" | cut -d: -f5)
is "$out" "root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
$me_name:x:$me_uid:$me_gid:$expected_gecos:/:/bin/sh" "/etc/passwd has root, nobody and the caller"
run "$CH_RUN" "$img" -- cat /etc/group
is "$out" "root:x:0:
nogroup:x:65534:
$(id -gn):x:$me_gid:" "/etc/group has root, nogroup and the caller's group"
run "$CH_RUN" -u 4242 -g 4343 "$img" -- sh -c 'tail -1 /etc/passwd; tail -1 /etc/group'
if getent passwd 4242 >/dev/null || getent group 4343 >/dev/null; then
    skip "unknown ids get dummy entries" "uid 4242 or gid 4343 exists on this host"
else
    is "$out" "charlie:x:4242:4343:Charlie:/:/bin/sh
charliegroup:x:4343:" "unknown ids get dummy entries"
fi
run "$CH_RUN" -u 0 "$img" -- cat /etc/passwd
unlike "$out" "^root:x:0:0:root:/root" "with -u 0 the default root line is not duplicated"
run "$CH_RUN" "$img" -- probe write /etc/passwd
isnt "$out" "ok" "/etc/passwd cannot be written"
run "$CH_RUN" --no-passwd "$img" -- cat /etc/passwd
is "$out" "" "--no-passwd leaves the image's /etc/passwd"
run "$CH_RUN" "$img" -- sh -c 'grep -c " /dev " /proc/self/mountinfo; ls -a /dev | grep -c "^f[01]$"'
is "$out" "2
0" "the scratch file system under /dev is covered by the host's /dev"

# Working directory.
run "$CH_RUN" "$img" -- probe cwd
is "$out" "/" "the working directory is / by default"
run "$CH_RUN" -c /tmp "$img" -- probe cwd
is "$out" "/tmp" "-c sets the working directory"
run "$CH_RUN" --cd=/nonexistent "$img" -- probe cwd
is "$rc" 31 "--cd to a missing directory exits 31"
like "$err" "error: can't cd to /nonexistent: No such file or directory" "--cd error names the directory"

# Arguments reach the job intact.
run "$CH_RUN" "$img" -- probe argv "a b" "" '$HOME' "-v"
is "$out" "[a b]
[]
[\$HOME]
[-v]" "arguments after -- reach the job unchanged"

# Quiet and verbose.
run "$CH_RUN" -q "$img" -- sh -c 'echo out; echo err >&2'
is "$out|$err" "|err" "-q sends the job's stdout to /dev/null"
run "$CH_RUN" -qqq "$img" -- sh -c 'echo out; echo err >&2'
is "$out|$err" "|" "-qqq sends the job's stderr to /dev/null too"
if [ "$kind" = dir ]; then
    run "$CH_RUN" -m /mnt "$img" -- true
    like "$err" "warning: --mount invalid with directory image, ignoring" "-m warns for a directory image"
    run "$CH_RUN" -qq -m /mnt "$img" -- true
    is "$err" "" "-qq silences warnings"
else
    mnt=$(mktemp -d /var/tmp/chute-mnt.XXXXXX)
    run "$CH_RUN" -m "$mnt" "$img" -- probe cwd
    is "$rc|$out" "0|/" "-m DIR mounts the SquashFS image on DIR"
    rmdir "$mnt"
    run "$CH_RUN" -m /tmp "$img" -- true
    is "$rc" 31 "-m on a bind source is refused"
    like "$err" "--mount: /tmp would hide bind source /tmp" "the refusal says why"
    run "$CH_RUN" -m "$scratch/nomnt" "$img" -- true
    is "$rc" 31 "-m with a missing directory exits 31"
    like "$err" "--mount: not a directory: $scratch/nomnt" "the error names the directory"
    run "$CH_RUN" -qq -m /nonexistent "$img" -- true
    like "$err" "error:" "-qq still prints errors"
fi
run "$CH_RUN" -v "$img" -- true
like "$err" "^ch-run\[[0-9]+\]: bind: /dev -> /dev" "-v reports the binds"
run "$CH_RUN" -vvv "$img" -- true
like "$err" "trace: \+[0-9]+us stage: pivoted" "-vvv reports start-up stages with times"
run "$CH_RUN" -q -v "$img" -- true
is "$rc" 31 "-q with -v is an error"

# Version, help, features.
run "$CH_RUN" -V
is "$rc|$out" "0|" "-V exits 0 with nothing on stdout"
like "$err" "^[0-9]+\.[0-9]+\.[0-9]+" "-V prints the version on stderr"
run "$CH_RUN" --help
like "$out" "usage: ch-run \[OPTION...\] IMAGE -- COMMAND" "--help prints usage on stdout"
run "$CH_RUN" --feature=extglob
is "$rc" 0 "--feature=extglob is supported"
run "$CH_RUN" --feature=squash
is "$rc" 0 "--feature=squash is supported"
run "$CH_RUN" --feature=overlayfs
if [ "$(printf '%s\n' "5.11" "$(uname -r | cut -d- -f1)" | sort -V | head -1)" = 5.11 ]; then
    is "$rc" 0 "--feature=overlayfs exits 0 on Linux 5.11 or later"
else
    is "$rc" 1 "--feature=overlayfs exits 1 before Linux 5.11"
fi
run "$CH_RUN" --feature=bogus
is "$rc" 31 "--feature with an unknown feature exits 31"
like "$err" "unknown feature: \"bogus\"" "--feature error names the feature"

# Images by name in storage.
storage=$scratch/storage
mkdir -p "$storage/img"
cp -a "$imgdir" "$storage/img/foo%bar+1.0"
run "$CH_RUN" -s "$storage" foo/bar:1.0 -- probe cwd
is "$rc|$out" "0|/" "an image name is found in -s storage (/ as %, : as +)"
run env CH_IMAGE_STORAGE="$storage" "$CH_RUN" foo/bar:1.0 -- true
is "$rc" 0 "\$CH_IMAGE_STORAGE is the default storage"
run "$CH_RUN" -s "$storage" "$storage/img/foo%bar+1.0" -- true
is "$rc" 31 "a storage directory given by path is refused"
like "$err" "can't run directory images from storage" "the refusal says why"
run "$CH_RUN" --unsafe -s "$storage" "$storage/img/foo%bar+1.0" -- true
is "$rc" 0 "--unsafe allows a storage directory by path"
run "$CH_RUN" -w -s "$storage" foo/bar:1.0 -- true
is "$rc" 31 "-w on a storage image needs --unsafe"

# Privileges: a setuid-root binary and a setuid-installed ch-run (made by the
# test runner when it is root).
if [ -n "${CHUTE_TEST_SUID_PROBE:-}" ]; then
    suiddir=$(dirname "$CHUTE_TEST_SUID_PROBE")
    run "$CH_RUN" -b "$suiddir:/mnt/0" "$img" -- /mnt/0/$(basename "$CHUTE_TEST_SUID_PROBE") ids
    is "$out" "uid=$me_uid gid=$me_gid euid=$me_uid egid=$me_gid groups=$me_gid" \
       "a setuid-root binary gains no privileges in the container"
    run "$CH_RUN" -b "$suiddir:/mnt/0" "$img" -- /mnt/0/$(basename "$CHUTE_TEST_SUID_PROBE") status CapEff
    like "$out" "CapEff:[[:space:]]+0+$" "a setuid-root binary gets no capabilities"
else
    skip "a setuid-root binary gains no privileges in the container" "needs the runner as root"
    skip "a setuid-root binary gets no capabilities" "needs the runner as root"
fi
if [ -n "${CHUTE_TEST_SUID_CH_RUN:-}" ]; then
    run "$CHUTE_TEST_SUID_CH_RUN" "$img" -- true
    is "$rc" 31 "a setuid-installed ch-run refuses to run"
    like "$err" "setuid, setgid or with file capabilities.*remove them" "the refusal tells the admin why"
else
    skip "a setuid-installed ch-run refuses to run" "needs the runner as root"
    skip "the refusal tells the admin why" "needs the runner as root"
fi

done_testing
