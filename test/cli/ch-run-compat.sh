#!/bin/bash
# Compatibility: the same command lines through Charliecloud's ch-run (Debian
# charliecloud-runtime) and chute's, on the same image, as the same user, must
# give the same output and exit status. Known differences are excluded
# explicitly (see the man page, DIFFERENCES FROM CHARLIECLOUD).
. "$CLI_LIB"

cc=/usr/bin/ch-run
if ! [ -x "$cc" ] || ! "$cc" --version 2>&1 | grep -Eq '^0\.[0-9]+'; then
    echo "1..0 # SKIP Charliecloud's ch-run not installed (apt-get install charliecloud-runtime)"
    exit 0
fi
cc_version=$("$cc" --version 2>&1)

data=$scratch/data; mkdir "$data"; echo payload > "$data/file"
printf 'A=1\nB=$A:two\nC='"'"'q'"'"'\n' > "$scratch/env"

# Charliecloud 0.31 keeps the host's HOME; 0.35 and later set /root or /.
# chute follows the later rule: compare everything but HOME.
same () {  # DESCRIPTION -- CH-RUN-ARGS...
    local desc=$1; shift 2
    local cc_out cc_rc ours_out ours_rc
    cc_out=$(env HOME=/nonexistent "$cc" "$@" 2>/dev/null | grep -v '^HOME=')
    cc_rc=${PIPESTATUS[0]}
    ours_out=$(env HOME=/nonexistent "$CH_RUN" "$@" 2>/dev/null | grep -v '^HOME=')
    ours_rc=${PIPESTATUS[0]}
    if [ "$cc_out" = "$ours_out" ] && [ "$cc_rc" = "$ours_rc" ]; then
        ok "same as Charliecloud $cc_version: $desc"
    else
        not_ok "same as Charliecloud $cc_version: $desc" \
            "charliecloud (exit $cc_rc):" "$cc_out" "chute (exit $ours_rc):" "$ours_out"
    fi
}

same "ids" -- "$img" -- probe ids
same "ids with -u/-g" -- -u 0 -g 0 "$img" -- probe ids
same "other ids" -- --uid=1234 --gid=5678 "$img" -- probe ids
same "/etc/passwd" -- "$img" -- cat /etc/passwd
same "/etc/group" -- "$img" -- cat /etc/group
same "/etc/passwd as root" -- -u 0 "$img" -- cat /etc/passwd
same "/etc/passwd for an unknown uid" -- -u 4242 -g 4343 "$img" -- cat /etc/passwd /etc/group
same "--no-passwd" -- --no-passwd "$img" -- cat /etc/passwd
same "environment" -- "$img" -- sh -c 'env | sort'
same "PATH without /bin" -- "$img" -- /usr/bin/env PATH=/usr/bin /bin/sh -c 'echo $PATH'
same "--set-env=K=V" -- --set-env=FOO=bar "$img" -- sh -c 'env | sort'
same "--set-env=FILE with expansion and quotes" -- --set-env="$scratch/env" "$img" -- sh -c 'echo "$A|$B|$C"'
same "--unset-env" -- --unset-env='SHELL' --unset-env='LANG*' "$img" -- sh -c 'env | sort'
same "--env-no-expand" -- --env-no-expand --set-env='X=$PATH' "$img" -- sh -c 'echo "$X"'
same "working directory" -- "$img" -- pwd
same "--cd" -- -c /tmp "$img" -- pwd
same "--bind" -- -b "$data:/mnt/0" "$img" -- cat /mnt/0/file
same "two binds" -- -b "$data:/mnt/0" -b "$data:/mnt/1" "$img" -- sh -c 'cat /mnt/0/file /mnt/1/file'
same "-t private /tmp" -- -t "$img" -- ls -a /tmp
same "exit status" -- "$img" -- probe exit 7
same "the image's root" -- "$img" -- ls /
same "read-only image" -- "$img" -- probe write /x
[ "$kind" = dir ] && same "-w" -- -w "$img" -- sh -c 'probe write /x; rm /x'
same "arguments" -- "$img" -- probe argv "a b" "" '$HOME'
same "setgroups" -- "$img" -- cat /proc/self/setgroups
same "one uid mapped" -- "$img" -- sh -c 'wc -l < /proc/self/uid_map'
same "no_new_privs" -- "$img" -- probe status NoNewPrivs
same "--feature=extglob" -- --feature=extglob

done_testing
