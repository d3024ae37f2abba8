#!/bin/bash
# Least privilege: the job's capability sets. A job that is not root in its
# namespace runs with every set empty, its bounding set included, so nothing
# it executes can gain a capability; with -u 0 it keeps the namespaced
# capabilities (its bounding set is whole) minus what --cap-drop names; no
# job has ambient or inheritable capabilities, and no_new_privs is always
# set. Run on directory and SquashFS images (CHUTE_IMAGE_KIND).
. "$CLI_LIB"

last=$(cat /proc/sys/kernel/cap_last_cap)
full=$(printf '%016x' $(( (1 << (last + 1)) - 1 )))
caps='grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status | tr -s "\t " " " | tr "\n" " "'

run "$CH_RUN" "$img" -- sh -c "$caps"
is "$out" "CapInh: 0000000000000000 CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1 " \
    "a job that is not root: every capability set empty, bounding set too; no_new_privs"
run "$CH_RUN" -u 0 "$img" -- sh -c "$caps"
is "$out" "CapInh: 0000000000000000 CapPrm: $full CapEff: $full CapBnd: $full CapAmb: 0000000000000000 NoNewPrivs: 1 " \
    "-u 0: the namespace's root keeps its capabilities there, none inheritable or ambient"
run "$CH_RUN" -u 0 --cap-drop=all "$img" -- sh -c "$caps"
is "$out" "CapInh: 0000000000000000 CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1 " \
    "-u 0 --cap-drop=all: no capability at all"
want=$(printf '%016x' $(( (1 << (last + 1)) - 1 - (1 << 21) - (1 << 13) )))
run "$CH_RUN" -u 0 --cap-drop=sys_admin,CAP_NET_RAW "$img" -- sh -c "$caps"
is "$out" "CapInh: 0000000000000000 CapPrm: $want CapEff: $want CapBnd: $want CapAmb: 0000000000000000 NoNewPrivs: 1 " \
    "-u 0 --cap-drop=sys_admin,CAP_NET_RAW: exactly those two gone"
run "$CH_RUN" -u 0 --cap-drop=Sys_Admin --cap-drop=net_raw "$img" -- sh -c "$caps"
like "$out" "CapBnd: $want" "--cap-drop repeated, names in any case: the same"

# What the capability is for: root in the namespace may mount a tmpfs.
run "$CH_RUN" -u 0 "$img" -- sh -c 'mount -t tmpfs none /mnt && echo mounted'
is "$rc/$out" "0/mounted" "-u 0: the job may mount a tmpfs in its namespace"
run "$CH_RUN" -u 0 --cap-drop=sys_admin "$img" -- sh -c 'mount -t tmpfs none /mnt && echo mounted'
isnt "$rc" 0 "-u 0 --cap-drop=sys_admin: it may not"
run "$CH_RUN" "$img" -- sh -c 'mount -t tmpfs none /mnt && echo mounted'
isnt "$rc" 0 "not root: it may not"

run "$CH_RUN" -u 0 --cap-drop=sys_bogus "$img" -- true
is "$rc" 31 "--cap-drop=sys_bogus: exit 31"
like "$err" 'unknown capability "sys_bogus"' "... naming it"
run "$CH_RUN" --cap-drop= "$img" -- true
is "$rc" 31 "--cap-drop with an empty list: exit 31"

# Optional isolation: namespaces of the job's own, off by default.
ns_of () { readlink "/proc/self/ns/$1"; }
run "$CH_RUN" "$img" -- sh -c 'for n in ipc uts net; do readlink /proc/self/ns/$n; done'
is "$out" "$(printf '%s\n%s\n%s' "$(ns_of ipc)" "$(ns_of uts)" "$(ns_of net)")" \
    "by default the job shares the host's IPC, UTS and network namespaces"
run "$CH_RUN" --ipc "$img" -- readlink /proc/self/ns/ipc
is "$rc" 0 "--ipc: exit 0"
isnt "$out" "$(ns_of ipc)" "--ipc: an IPC namespace of its own"
run "$CH_RUN" --uts "$img" -- readlink /proc/self/ns/uts
isnt "$out" "$(ns_of uts)" "--uts: a UTS namespace of its own"
run "$CH_RUN" --hostname=box.example "$img" -- hostname
is "$rc/$out" "0/box.example" "--hostname=box.example: the job's host name"
is "$(hostname)" "$(cat /proc/sys/kernel/hostname)" "... and the host's is unchanged"
isnt "$(hostname)" "box.example" "... really unchanged"
run "$CH_RUN" --net=none "$img" -- sh -c 'readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; ip link show lo'
is "$rc" 0 "--net=none: exit 0"
isnt "$(head -n 1 <<<"$out")" "$(ns_of net)" "--net=none: a network namespace of its own"
is "$(sed -n 2p <<<"$out")" "lo" "--net=none: only the loopback interface"
like "$out" "lo: <LOOPBACK,UP" "--net=none: loopback is up"
run "$CH_RUN" --net=host "$img" -- readlink /proc/self/ns/net
is "$out" "$(ns_of net)" "--net=host: the host's network (the default)"
run "$CH_RUN" --net=bridge "$img" -- true
is "$rc" 31 "--net=bridge: exit 31"
like "$err" 'net: invalid value "bridge"' "... naming the value"
run "$CH_RUN" --hostname='a/b' "$img" -- true
is "$rc" 31 "--hostname with a slash: exit 31"
run "$CH_RUN" --join-ct=2 --join-tag=iso-$$ --ipc "$img" -- true
is "$rc" 31 "--ipc with --join: exit 31"
like "$err" "can't be combined with --join" "... saying why"

done_testing
