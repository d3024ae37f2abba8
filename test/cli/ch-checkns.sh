#!/bin/bash
# ch-checkns: one line per check; 0 when the machine can run containers,
# 31 (with the failing checks named) when it can't.
. "$CLI_LIB"
: "${CH_CHECKNS:?}"

run "$CH_CHECKNS"
is "$rc" 0 "ch-checkns passes on this machine"
like "$out" "^ok   user namespace: " "it checks user namespaces"
like "$out" "^ok   mount namespace: " "it checks mount namespaces"
like "$out" "^ok   pivot_root: " "it checks pivot_root"
like "$out" "^(ok  |WARN) /dev/fuse" "it checks /dev/fuse"
like "$out" "^(ok  |WARN) overlayfs in a user namespace" "it checks overlayfs"
like "$out" "^ok   seccomp filters \(for --seccomp, --seccomp-deny\): root emulation" "it checks seccomp filters"
like "$out" "user.max_user_namespaces=[0-9]+" "it reports the user namespace limit"
is "$(printf '%s\n' "$out" | grep -Evc '^(ok  |WARN|FAIL) ')" 0 "every line is one check"

# A user namespace where no further user namespaces may be created.
run unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$0"' "$CH_CHECKNS"
is "$rc" 31 "ch-checkns exits 31 when user namespaces can't be created"
like "$out" "^FAIL user namespace sysctls: user.max_user_namespaces=0.*fix: sysctl" "it names the sysctl and the fix"
like "$out" "^FAIL user namespace: .*No space left on device" "it shows the failing call's error"

run "$CH_CHECKNS" --bogus
is "$rc" 31 "an unknown argument exits 31"

done_testing
