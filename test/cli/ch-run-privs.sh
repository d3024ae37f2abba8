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

done_testing
