#!/bin/bash
# What the job can't do, even as root in its namespace (-u 0): leave the
# image's tree (chroot tricks, /proc/PID/root), gain privileges from setuid
# files or file capabilities, create devices, bind privileged ports, write
# the host's root or the host files bound read-only, change its groups,
# signal other users' processes. Run on directory and SquashFS images
# (CHUTE_IMAGE_KIND), with and without --pid where that changes the view.
. "$CLI_LIB"

# A host file outside the image, which the job must not see. Not under
# /tmp: the container shows the host's /tmp.
hostdir=$(mktemp -d /var/tmp/chute-confine.XXXXXX)
trap 'rm -rf "$hostdir"; cleanup' EXIT
chmod 755 "$hostdir"
marker=$hostdir/host-only
echo host > "$marker"
me=$(id -u)
# The options of a run, for the descriptions.
label () { local o="$*"; o=$(echo $o); echo "${o:-no option}"; }

# --- chroot tricks. chroot(2) into a subdirectory without entering it,
# then ".." as often as it takes, then chroot(".") again: out of a plain
# chroot this reaches the real root. The container's root is a pivot_root
# whose old root is detached: ".." ends at the image's root.
if unshare -Ur true 2>/dev/null; then
    run unshare -Ur "$PROBE" chroot-out "$hostdir" "$marker"
    is "$out" "chroot: ok
chroot .: ok
$marker: found" "control: the trick gets out of a plain chroot"
else
    skip "control: the trick gets out of a plain chroot" "unshare -Ur not allowed here"
fi
for pid in "" --pid; do
    run "$CH_RUN" -u 0 $pid "$img" -- probe chroot-out /mnt/1 "$marker"
    is "$out" "chroot: ok
chroot .: ok
$marker: absent" "$(label -u 0 $pid): chroot, .. and chroot . again stay in the image"
done
run "$CH_RUN" "$img" -- probe chroot-out /mnt/1 "$marker"
is "$out" "chroot: EPERM" "a job that is not root can't chroot at all"

# /proc/PID/root of every process the job can see: none may show the
# host's files (the launcher of a SquashFS image stays in the host's mount
# namespace; without --pid, the host's processes are in /proc).
[ -e "/proc/$$/root$marker" ] && ok "control: /proc/PID/root of a host process shows the host file" \
                             || not_ok "control: /proc/PID/root of a host process shows the host file"
look='n=0; for p in /proc/[0-9]*; do n=$((n + 1)); [ -e "$p/root'$marker'" ] && echo "${p#/proc/}"; done; echo "looked at $n"'
for u in "" "-u 0"; do
    for pid in "" --pid; do
        run "$CH_RUN" $u $pid "$img" -- sh -c "$look"
        like "$out" "^looked at [0-9]+$" "$(label $u $pid): through no process's /proc/PID/root can the job see the host's files"
    done
done
run "$CH_RUN" -u 0 "$img" -- sh -c 'ls /proc/$PPID/root/ >/dev/null 2>&1 && echo listed || echo refused'
is "$out" "refused" "-u 0: the job's parent's /proc/PID/root can't be listed"

# --- setuid files and file capabilities grant nothing
if [ -n "${CHUTE_TEST_SUID_PROBE:-}" ]; then
    suiddir=$(dirname "$CHUTE_TEST_SUID_PROBE")
    suid=/mnt/0/$(basename "$CHUTE_TEST_SUID_PROBE")
    for u in "" "-u 0"; do
        for pid in "" --pid; do
            run "$CH_RUN" $u $pid -b "$suiddir:/mnt/0" "$img" -- \
                sh -c "$suid ids; probe status CapEff; $suid status CapEff"
            ids=$(printf '%s\n' "$out" | head -n 1)
            uid=$(printf '%s\n' "$ids" | sed -E 's/^uid=([0-9]+) .*/\1/')
            euid=$(printf '%s\n' "$ids" | sed -E 's/.* euid=([0-9]+) .*/\1/')
            is "$rc|$euid" "0|$uid" "$(label $u $pid): a root-owned setuid program keeps the caller's effective uid"
            is "$(printf '%s\n' "$out" | sed -n 3p)" "$(printf '%s\n' "$out" | sed -n 2p)" \
               "$(label $u $pid): ... and no capability the job lacks"
        done
    done
    run "$CH_RUN" -u 0 --cap-drop=all -b "$suiddir:/mnt/0" "$img" -- "$suid" status CapEff
    like "$out" "CapEff:[[:space:]]+0+$" "-u 0 --cap-drop=all: ... none at all"
else
    for u in "" "-u 0"; do
        for pid in "" --pid; do
            skip "$(label $u $pid): a root-owned setuid program keeps the caller's effective uid" "needs the runner as root"
            skip "$(label $u $pid): ... and no capability the job lacks" "needs the runner as root"
        done
    done
    skip "-u 0 --cap-drop=all: ... none at all" "needs the runner as root"
fi
# A file capability set from inside (as -u 0, on a writable directory
# image): it would give cap_net_raw back to a job that dropped it. The
# kernel refuses to execute a program whose file capabilities (with the
# effective bit) can't all be granted; one that runs must run without.
if [ "$kind" = dir ]; then
    fcap=$scratch/fcap
    cp -a "$imgdir" "$fcap"
    cp "$PROBE" "$fcap/bin/probe-fcap"
    run "$CH_RUN" -u 0 -w "$fcap" -- probe setfcap /bin/probe-fcap 13
    if [ "$out" = ok ]; then
        ok "-u 0 can set a file capability in its writable image"
        run "$CH_RUN" -u 0 --cap-drop=net_raw "$fcap" -- probe-fcap status CapEff CapPrm
        has_raw=$(printf '%s\n' "$out" | awk '{print $2}' | while read -r hex; do
                      echo $(( (0x$hex >> 13) & 1 )); done | sort -u | tr '\n' ' ')
        if [ "$rc" = 0 ]; then
            is "$has_raw" "0 " "-u 0 --cap-drop=net_raw: a program with file capability net_raw doesn't get it"
        else
            like "$rc|$err" "^49\|.*probe-fcap: Operation not permitted" \
                 "-u 0 --cap-drop=net_raw: a program with file capability net_raw doesn't get it (not executed)"
        fi
    else
        skip "-u 0 can set a file capability in its writable image" "setxattr: $out"
        skip "-u 0 --cap-drop=net_raw: a program with file capability net_raw doesn't get it" "no file capability"
    fi
else
    skip "-u 0 can set a file capability in its writable image" "directory images only"
    skip "-u 0 --cap-drop=net_raw: a program with file capability net_raw doesn't get it" "directory images only"
fi

# --- devices: neither character nor block devices, even as -u 0 on a tmpfs
# of its own
for u in "" "-u 0"; do
    run "$CH_RUN" $u $write "$img" -- sh -c 'probe mknod /mnt/cdev; probe mknod /mnt/bdev b'
    is "$(printf '%s\n' "$out" | sort -u | tr '\n' ' ')" "EPERM " "$(label $u): no character or block device can be made"
done
run "$CH_RUN" -u 0 "$img" -- sh -c 'mount -t tmpfs none /mnt/1 && probe mknod /mnt/1/null && cat /mnt/1/null'
is "$out" "EPERM" "-u 0: not even on a tmpfs it mounted itself"

# --- privileged ports: the host's network namespace belongs to the host's
# user namespace, where the job holds no capability; with --net=none, -u 0
# owns its network namespace and may.
start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)
if [ "$start" -gt 1 ]; then
    port=$(( start > 80 ? 80 : start - 1 ))
    run "$CH_RUN" "$img" -- probe bind "$port"
    is "$out" "EACCES" "binding port $port is refused"
    run "$CH_RUN" -u 0 "$img" -- probe bind "$port"
    is "$out" "EACCES" "-u 0: binding port $port on the host's network is refused"
    run "$CH_RUN" --net=none "$img" -- probe bind "$port"
    is "$out" "EACCES" "--net=none: refused to a job that is not root"
    run "$CH_RUN" -u 0 --net=none "$img" -- probe bind "$port"
    is "$out" "ok" "-u 0 --net=none: allowed, in a network namespace of the job's own"
else
    for d in "binding a privileged port is refused" "-u 0: ... on the host's network" \
             "--net=none: refused to a job that is not root" "-u 0 --net=none: allowed"; do
        skip "$d" "no privileged ports here (ip_unprivileged_port_start=$start)"
    done
fi

# --- the host's root: a writable image is the root, not the host's /
name=chute-confine-$$
for u in "" "-u 0"; do
    run "$CH_RUN" $u $write "$img" -- probe write "/$name"
    is "$out" "ok" "$(label $u $write): the job may write its root directory"
    [ -e "/$name" ] && not_ok "$(label $u $write): ... which is not the host's" \
                    || ok "$(label $u $write): ... which is not the host's"
done
[ "$kind" = dir ] && rm -f "$imgdir/$name"

# Host files bound read-only: a job that is root in its namespace may
# remount the bind read-write (the read-only flag is the container's own,
# not locked), but writing stays the invoking user's right on the host.
if [ -f /etc/hosts ] && [ "$(stat -c %u /etc/hosts)" != "$me" ] && ! [ -w /etc/hosts ]; then
    before=$(cksum < /etc/hosts)
    run "$CH_RUN" -u 0 "$img" -- sh -c 'mount -o remount,bind,rw /etc/hosts 2>/dev/null; probe open-rw /etc/hosts'
    like "$out" "^(EACCES|EROFS)$" "-u 0: the host's /etc/hosts can't be opened for writing, even after a remount"
    is "$(cksum < /etc/hosts)" "$before" "... and it is unchanged"
    run "$CH_RUN" "$img" -- sh -c 'mount -o remount,bind,rw /etc/hosts 2>/dev/null && echo remounted || echo refused'
    is "$out" "refused" "a job that is not root can't remount it at all"
else
    skip "-u 0: the host's /etc/hosts can't be opened for writing, even after a remount" "no /etc/hosts the user can't write"
    skip "... and it is unchanged" "no /etc/hosts the user can't write"
    skip "a job that is not root can't remount it at all" "no /etc/hosts the user can't write"
fi
# Mounts that came with a host directory (here /dev/pts and /dev/shm under
# /dev) are locked to it: unmounting one would show what the host hides
# beneath.
subs=$(awk '$5 ~ "^/dev/." {print $5}' /proc/self/mountinfo | sort -u | head -n 3 | tr '\n' ' ')
if [ -n "$subs" ]; then
    run "$CH_RUN" -u 0 "$img" -- sh -c "for m in $subs; do umount \$m 2>/dev/null && echo \"\$m: unmounted\" || echo \"\$m: locked\"; done"
    unlike "$out" "unmounted" "-u 0: the host's mounts under /dev can't be unmounted ($subs)"
else
    skip "-u 0: the host's mounts under /dev can't be unmounted" "the host has none"
fi

# --- groups: setgroups(2) is denied in the job's user namespace, and no
# other group is mapped
for u in "" "-u 0"; do
    run "$CH_RUN" $u "$img" -- sh -c "probe setgroups; probe setgroups $(id -g); probe setgroups 0"
    is "$(printf '%s\n' "$out" | sort -u)" "EPERM" "$(label $u): setgroups(2) fails with EPERM"
    run "$CH_RUN" $u "$img" -- sh -c 'probe setgid 12345; probe ids'
    like "$(head -n 1 <<<"$out")" "^(EPERM|EINVAL)$" "$(label $u): setgid(2) to another group fails"
    like "$(tail -n 1 <<<"$out")" " egid=$(id -g) " "$(label $u): ... and the group is unchanged"
done
run "$CH_RUN" -u 0 -g 0 "$img" -- sh -c 'probe setgid 12345; probe ids'
like "$(tr '\n' ' ' <<<"$out")" "^EINVAL uid=0 gid=0 euid=0 egid=0 " "-u 0 -g 0: setgid(2) to an unmapped group fails; the group stays 0"

# --- signals: another user's process (without --pid the host's processes
# are in /proc) can't be signalled, not even with a harmless SIGCONT
# (SIGCONT may go to any process of the sender's session: one of another.)
other=
session=$(awk '{print $6}' /proc/self/stat)
for p in /proc/[0-9]*; do
    n=${p#/proc/}
    [ "$n" -gt 2 ] || continue
    u=$(stat -c %u "$p" 2>/dev/null) || continue
    s=$(awk '{print $6}' "$p/stat" 2>/dev/null) || continue
    if [ "$u" != "$me" ] && [ "$s" != "$session" ]; then other=$n; break; fi
done
if [ -n "$other" ]; then
    for u in "" "-u 0"; do
        run "$CH_RUN" $u "$img" -- sh -c "probe signal $other 0; probe signal $other 18"
        is "$out" "EPERM
EPERM" "$(label $u): process $other of uid $(stat -c %u /proc/$other) can't be signalled"
    done
    run "$CH_RUN" -u 0 --pid "$img" -- probe signal "$other" 0
    is "$out" "ESRCH" "-u 0 --pid: it can't even be named"
else
    skip "another user's process can't be signalled" "no process of another user"
    skip "-u 0: another user's process can't be signalled" "no process of another user"
    skip "-u 0 --pid: it can't even be named" "no process of another user"
fi

done_testing
