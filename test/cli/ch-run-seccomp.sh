#!/bin/bash
# seccomp filters: --seccomp fakes the calls that change owners and ids, and
# mknod of devices, without effect (FIFOs are really made), in the native
# and the i386 interface; --seccomp-deny refuses the built-in list or a
# profile's calls with their errno; a bad profile stops ch-run before the
# job starts; each process of a --join group has its own filter;
# --feature=seccomp. Run on directory and SquashFS images (CHUTE_IMAGE_KIND).
. "$CLI_LIB"

me="$(id -u):$(id -g)"
data=$scratch/data
mkdir -p "$data"
b=(-b "$data:/mnt/0")
owner () { stat -c %u:%g "$1"; }

run "$CH_RUN" --feature=seccomp
is "$rc" 0 "--feature=seccomp: exit 0 (the self-test passes here)"
run "$CH_RUN" -v --feature=seccomp
like "$err" "seccomp self-test passed" "... and -v says so"

# --- root emulation: chown and its variants
: > "$data/f"
ln -s f "$data/l"
run "$CH_RUN" "${b[@]}" "$img" -- probe chown /mnt/0/f 0 0
like "$rc/$out" "^1/(EINVAL|EPERM)$" "without --seccomp: chown to 0:0 fails"
for call in chown lchown fchown fchownat; do
    run "$CH_RUN" --seccomp "${b[@]}" "$img" -- probe $call /mnt/0/f 0 0
    is "$rc/$out" "0/ok" "--seccomp: $call to 0:0 returns 0"
done
is "$(owner "$data/f")" "$me" "... and the owner is unchanged"
run "$CH_RUN" --seccomp "${b[@]}" "$img" -- probe lchown /mnt/0/l 0 0
is "$rc/$out|$(stat -c %u:%g "$data/l")" "0/ok|$me" "--seccomp: lchown of a symlink: 0, unchanged"
run "$CH_RUN" -u 0 "${b[@]}" "$img" -- probe chown /mnt/0/f 1 1
like "$rc/$out" "^1/(EINVAL|EPERM)$" "-u 0 without --seccomp: chown to 1:1 (unmapped) fails"
run "$CH_RUN" -u 0 --seccomp "${b[@]}" "$img" -- probe chown /mnt/0/f 1 1
is "$rc/$out|$(owner "$data/f")" "0/ok|$me" "-u 0 --seccomp: it returns 0, owner unchanged"
# busybox's chown, as a package manager's script would run it.
run "$CH_RUN" -u 0 --seccomp "${b[@]}" "$img" -- chown 0:0 /mnt/0/f
is "$rc|$(owner "$data/f")" "0|$me" "-u 0 --seccomp: chown(1) succeeds and changes nothing"

# --- set*id, setgroups, capset: 0, and the ids stay as they were
run "$CH_RUN" "$img" -- probe ids
ids=$out
run "$CH_RUN" "$img" -- probe setid setuid 12345
isnt "$(head -n 1 <<<"$out")" "ok" "without --seccomp: setuid(12345) fails"
for call in setuid setgid setreuid setregid setresuid setresgid setgroups; do
    run "$CH_RUN" --seccomp "$img" -- probe setid $call 12345
    is "$rc|$out" "0|ok
$ids" "--seccomp: $call returns 0, ids unchanged"
done
run "$CH_RUN" --seccomp "$img" -- probe setid setfsuid 12345
is "$out" "0
$ids" "--seccomp: setfsuid returns 0, ids unchanged"
run "$CH_RUN" -u 0 "$img" -- probe ids
ids0=$out
run "$CH_RUN" -u 0 --seccomp "$img" -- probe setid setgroups 0
is "$rc|$out" "0|ok
$ids0" "-u 0 --seccomp: setgroups returns 0, groups unchanged"
run "$CH_RUN" -u 0 --seccomp "$img" -- probe status Uid Gid
run2=$out
run "$CH_RUN" -u 0 --seccomp "$img" -- sh -c 'probe setid setresuid 7 >/dev/null; probe status Uid Gid'
is "$out" "$run2" "-u 0 --seccomp: /proc/self/status ids unchanged after setresuid"
run "$CH_RUN" -u 0 "$img" -- probe setid capset 0
is "$rc|$out" "0|ok
effective=0000000000000000" "-u 0 without --seccomp: capset clears the job's capabilities"
run "$CH_RUN" -u 0 --seccomp "$img" -- probe setid capset 0
is "$rc|$(head -n 1 <<<"$out")" "0|ok" "-u 0 --seccomp: capset returns 0"
like "$(tail -n 1 <<<"$out")" "^effective=0*[1-9a-f][0-9a-f]*$" "... and the capabilities stay"
# Capabilities are still dropped before the filter (it would fake capset).
run "$CH_RUN" --seccomp "$img" -- probe status CapBnd CapEff
is "$(tr -s '\t ' ' ' <<<"$out")" "CapEff: 0000000000000000
CapBnd: 0000000000000000" "--seccomp: a job not root still has no capability"

# --- mknod: devices faked, FIFOs made
run "$CH_RUN" "${b[@]}" "$img" -- probe mknod /mnt/0/c c
like "$rc/$out" "^1/E" "without --seccomp: mknod of a character device fails"
run "$CH_RUN" --seccomp "${b[@]}" "$img" -- probe mknod /mnt/0/c c
is "$rc/$out" "0/ok" "--seccomp: mknod of a character device returns 0"
[ -e "$data/c" ] && not_ok "... and makes nothing" "$(ls -l "$data/c")" || ok "... and makes nothing"
run "$CH_RUN" -u 0 --seccomp "${b[@]}" "$img" -- probe mknod /mnt/0/b b
is "$rc/$out" "0/ok" "-u 0 --seccomp: mknod of a block device returns 0"
[ -e "$data/b" ] && not_ok "... and makes nothing" "$(ls -l "$data/b")" || ok "... and makes nothing"
run "$CH_RUN" --seccomp "${b[@]}" "$img" -- probe mknod /mnt/0/p p
is "$rc/$out" "0/ok" "--seccomp: mknod of a FIFO returns 0"
[ -p "$data/p" ] && ok "... and really makes it" || not_ok "... and really makes it"
run "$CH_RUN" --seccomp "${b[@]}" "$img" -- mkfifo /mnt/0/p2
[ "$rc" = 0 ] && [ -p "$data/p2" ] && ok "--seccomp: mkfifo(1) makes a FIFO" \
    || not_ok "--seccomp: mkfifo(1) makes a FIFO" "rc $rc: $err"
run "$CH_RUN" --seccomp "${b[@]}" "$img" -- probe mknod /mnt/0/p p
is "$rc/$out" "1/EEXIST" "--seccomp: mknod of an existing FIFO reaches the kernel (EEXIST)"

# --- the i386 interface of an x86_64 kernel (int $0x80)
if [ "$(uname -m)" = x86_64 ]; then
    run "$CH_RUN" "${b[@]}" "$img" -- probe int80 fchown32 /mnt/0/f 0 0
    if [ "$rc" -gt 1 ]; then
        skip "--seccomp: i386 fchown32 is faked" "no i386 system calls here (status $rc)"
        skip "--seccomp: i386 setuid32 is faked" "no i386 system calls here"
        skip "--seccomp-deny: i386 keyctl is refused" "no i386 system calls here"
    else
        like "$out" "^E" "without --seccomp: i386 fchown32 to 0:0 fails"
        run "$CH_RUN" --seccomp "${b[@]}" "$img" -- probe int80 fchown32 /mnt/0/f 0 0
        is "$rc/$out|$(owner "$data/f")" "0/ok|$me" "--seccomp: i386 fchown32 returns 0, owner unchanged"
        run "$CH_RUN" --seccomp "$img" -- probe int80 setuid32 12345
        is "$out" "ok
$ids" "--seccomp: i386 setuid32 returns 0, ids unchanged"
        printf 'keyctl EDOM\n' > "$scratch/keyctl.prof"
        run "$CH_RUN" --seccomp-deny="$scratch/keyctl.prof" "$img" -- probe int80 keyctl
        is "$out" "EDOM" "--seccomp-deny: i386 keyctl is refused too"
    fi
else
    skip "--seccomp: the i386 interface" "not an x86_64 machine"
fi

# --- deny list: the built-in one answers EPERM
for call in keyctl add_key request_key perf_event_open userfaultfd; do
    run "$CH_RUN" "$img" -- probe sys $call
    without=$out
    if [ "$without" = EPERM ]; then
        skip "--seccomp-deny: $call fails with EPERM" "the kernel refuses it with EPERM here too (see EDOM below)"
        continue
    fi
    run "$CH_RUN" --seccomp-deny "$img" -- probe sys $call
    is "$out" "EPERM" "--seccomp-deny: $call fails with EPERM (without it: $without)"
done
# A distinctive errno tells the filter's answers from the kernel's for the
# calls an unprivileged process is refused anyway.
printf '# every built-in call, with an errno no kernel gives them\n@default EDOM\n' > "$scratch/edom.prof"
for call in bpf perf_event_open keyctl add_key request_key userfaultfd kexec_load init_module \
            open_by_handle_at reboot; do
    run "$CH_RUN" "$img" -- probe sys $call
    isnt "$out" "EDOM" "without --seccomp-deny: $call is not EDOM ($out)"
    run "$CH_RUN" --seccomp-deny="$scratch/edom.prof" "$img" -- probe sys $call
    is "$out" "EDOM" "--seccomp-deny=@default EDOM: $call fails with EDOM"
done
run "$CH_RUN" --seccomp-deny "${b[@]}" "$img" -- probe chown /mnt/0/f 0 0
like "$out" "^(EINVAL|EPERM)$" "--seccomp-deny alone fakes nothing: chown still fails"

# --- a profile
cat > "$scratch/p1" <<'EOF'
# a profile
bpf	ENOSYS   # as if the kernel had none

keyctl 33
EOF
run "$CH_RUN" "$img" -- probe sys userfaultfd
uffd=$out
run "$CH_RUN" --seccomp-deny="$scratch/p1" "$img" -- sh -c 'probe sys bpf; probe sys keyctl; probe sys userfaultfd'
is "$rc|$out" "0|ENOSYS
EDOM
$uffd" "a profile: bpf ENOSYS, keyctl by number, userfaultfd (not listed) as without"
printf 'keyctl enosys\n' > "$scratch/p2"
run "$CH_RUN" --seccomp-deny="$scratch/p1" --seccomp-deny="$scratch/p2" "$img" -- probe sys keyctl
is "$out" "ENOSYS" "two profiles: the later entry for a call wins, errno names in any case"
printf 'iopl\nvm86\n' > "$scratch/p3"
run "$CH_RUN" --seccomp-deny="$scratch/p3" "$img" -- true
is "$rc|$err" "0|" "calls of other architectures are accepted"

# --- both: the deny list wins
run "$CH_RUN" --seccomp --seccomp-deny "${b[@]}" "$img" -- sh -c 'probe sys kexec_load; probe chown /mnt/0/f 0 0'
is "$rc|$out" "0|EPERM
ok" "--seccomp --seccomp-deny: kexec_load is refused, chown still faked"
printf 'setuid EDOM\n' > "$scratch/p4"
run "$CH_RUN" --seccomp --seccomp-deny="$scratch/p4" "$img" -- sh -c 'probe setid setuid 5 | head -n 1; probe setid setgid 5 | head -n 1'
is "$out" "EDOM
ok" "--seccomp and a profile denying setuid: setuid refused, setgid faked"

# --- bad profiles: exit 31 before the job starts
bad_profile () {  # TEXT EXPECTED-MESSAGE DESCRIPTION
    printf '%s' "$1" > "$scratch/bad"
    rm -f "$data/started"
    run "$CH_RUN" --seccomp-deny="$scratch/bad" "${b[@]}" "$img" -- touch /mnt/0/started
    is "$rc" 31 "$3: exit 31"
    like "$err" "$2" "... naming the file and line"
    [ -e "$data/started" ] && not_ok "... and the job never started" || ok "... and the job never started"
}
bad_profile '# ok
bpf
kexec
' "seccomp-deny: $scratch/bad:3: unknown system call \"kexec\"" "an unknown system call"
bad_profile 'bpf EWHATEVER
' "$scratch/bad:1: not an errno name or a number from 1 to 4095: \"EWHATEVER\"" "an unknown errno"
bad_profile 'bpf 4096
' "$scratch/bad:1: not an errno" "errno 4096"
bad_profile 'bpf EPERM extra
' "$scratch/bad:1: expected a system call and an optional errno" "three words"
bad_profile 'Bpf
' "$scratch/bad:1: unknown system call \"Bpf\"" "a name in capitals"
run "$CH_RUN" --seccomp-deny="$scratch/no-such-file" "$img" -- true
is "$rc" 31 "a missing profile: exit 31"
like "$err" "seccomp-deny: can't read profile: $scratch/no-such-file: No such file or directory" "... naming it and why"
run "$CH_RUN" --seccomp-deny="$scratch" "$img" -- true
is "$rc" 31 "a directory as profile: exit 31"
run "$CH_RUN" --seccomp-deny= "$img" -- true
is "$rc" 31 "an empty file name: exit 31"

run "$CH_RUN" -v --seccomp --seccomp-deny "$img" -- true
like "$err" "seccomp: root emulation, [0-9]+ calls denied \([0-9]+ instructions\)" "-v describes the filter"

# --- --join: each process its own filter
t=sc$$
timeout 60 "$CH_RUN" --join-ct=2 --join-tag=$t --seccomp "${b[@]}" "$img" -- \
    sh -c 'sleep 0.5; probe chown /mnt/0/f 0 0; readlink /proc/self/ns/mnt' >"$scratch/j1" 2>&1 &
j1=$!
timeout 60 "$CH_RUN" --join-ct=2 --join-tag=$t "${b[@]}" "$img" -- \
    sh -c 'sleep 0.5; probe chown /mnt/0/f 0 0; readlink /proc/self/ns/mnt' >"$scratch/j2" 2>&1
wait $j1
is "$(head -n 1 "$scratch/j1")" "ok" "--join: the process with --seccomp has its chown faked"
like "$(head -n 1 "$scratch/j2")" "^(EINVAL|EPERM)$" "... the one without has not"
is "$(tail -n 1 "$scratch/j1")" "$(tail -n 1 "$scratch/j2")" "... and they share one container"

done_testing
