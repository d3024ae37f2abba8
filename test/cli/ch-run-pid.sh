#!/bin/bash
# --pid: the job in a PID namespace of its own, with its own /proc, under a
# minimal init (PID 1, part of ch-run) that reaps orphans, forwards signals
# and takes the namespace down when the job ends. Run on directory and
# SquashFS images (CHUTE_IMAGE_KIND).
. "$CLI_LIB"

# A host directory the jobs write to, at /mnt/0 inside.
io=$scratch/io
mkdir "$io"
# (Not a function: started in the background, a function would be a
# subshell, and $! its PID.)
pid_run=("$CH_RUN" --pid -b "$io:/mnt/0" "$img" --)
# The first child of process $1, from the host's side (empty if none yet).
child_of () { pgrep -P "$1" | head -n 1; }
wait_for () {  # FILE: until it exists and is not empty (at most 60 s)
    local i
    for i in $(seq 600); do [ -s "$1" ] && return 0; sleep 0.1; done
    return 1
}
state () { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }

# --- the job's view: its own numbers, its own /proc
run "$CH_RUN" --pid "$img" -- sh -c 'echo $$ $PPID'
is "$rc|$out" "0|2 1" "--pid: the job is PID 2, its parent the init, PID 1"
run "$CH_RUN" --pid "$img" -- sh -c 'cd /proc && echo [0-9]*'
is "$out" "1 2" "--pid: /proc lists the init and the job, nothing else"
run "$CH_RUN" --pid "$img" -- ps -o pid,comm
is "$(printf '%s\n' "$out" | awk 'NR > 1 {print $1 ":" $2}' | tr '\n' ' ')" "1:ch-run 2:ps " \
    "--pid: ps shows the init (ch-run) and itself only"
run "$CH_RUN" --pid "$img" -- sh -c "test -e /proc/$$ && echo visible || echo hidden"
is "$out" "hidden" "--pid: the host's processes (the test's shell) are not in /proc"
run "$CH_RUN" --pid "$img" -- readlink /proc/self/ns/pid
isnt "$out" "$(readlink /proc/self/ns/pid)" "--pid: a PID namespace other than the host's"
run "$CH_RUN" --pid "$img" -- sh -c 'grep -c "^proc /proc proc " /proc/mounts'
is "$out" "1" "--pid: one procfs on /proc, the namespace's own (no host /proc beneath)"

# Without --pid, none of this: the job sees the host's processes.
run "$CH_RUN" "$img" -- sh -c "test -e /proc/$$ && echo visible || echo hidden; readlink /proc/self/ns/pid"
is "$out" "visible
$(readlink /proc/self/ns/pid)" "without --pid: the host's PID namespace and processes"
run "$CH_RUN" "$img" -- sh -c 'echo $$'
isnt "$out" "2" "without --pid: the job has a host PID"

run "$CH_RUN" -v --pid "$img" -- true
like "$err" "namespaces: pid" "-v reports the PID namespace"

# --- what still applies to the job: identity, capabilities, no_new_privs,
# environment, working directory
what='probe ids; probe status CapPrm CapEff CapBnd NoNewPrivs; probe cwd; probe env FOO IMG_A'
run "$CH_RUN" -c /bin --set-env=FOO=bar --set-env "$img" -- sh -c "$what"
without=$out
run "$CH_RUN" --pid -c /bin --set-env=FOO=bar --set-env "$img" -- sh -c "$what"
is "$rc|$out" "0|$without" "--pid: ids, capabilities, no_new_privs, cwd and environment as without it"
like "$out" "NoNewPrivs:[[:space:]]+1" "... no_new_privs is set"
run "$CH_RUN" -u 0 "$img" -- sh -c "$what"
without=$out
run "$CH_RUN" -u 0 --pid "$img" -- sh -c "$what"
is "$out" "$without" "--pid -u 0: the same as -u 0 without it"

# --- exit status
run "$CH_RUN" --pid "$img" -- sh -c 'exit 7'
is "$rc" 7 "--pid: the job's exit status"
run "$CH_RUN" --pid "$img" -- probe kill 9
is "$rc" 137 "--pid: a job killed by SIGKILL gives 128+9"
run "$CH_RUN" --pid "$img" -- probe kill 15
is "$rc" 143 "--pid: a job killed by SIGTERM gives 128+15"
run "$CH_RUN" --pid "$img" -- /no/such/command
is "$rc" 49 "--pid: a command that can't be executed gives 49"
like "$err" "can't execve\(2\): /no/such/command" "... with the usual message"
like "$err" "^ch-run\[[0-9]+\]: error:" "... in the usual format"
unlike "$err" "^ch-run\[[12]\]:" "... naming the launcher's PID, not the namespace's"
run "$CH_RUN" --pid -c /no/such/dir "$img" -- true
is "$rc" 31 "--pid: a --cd that can't be entered gives 31"
like "$err" "can't cd to /no/such/dir" "... saying why"

# --- orphans are reaped by the init: the subshell exits at once, leaving
# a sleep whose parent becomes PID 1; once it ends, nothing is left of it.
run "$CH_RUN" --pid "$img" -- sh -c '
    o=$( (sleep 2 >/dev/null 2>&1 & echo $!) )
    echo "parent=$(cut -d" " -f4 /proc/$o/stat)"
    i=0
    while [ -e /proc/$o ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e /proc/$o ] && echo "left=$(cut -d" " -f3 /proc/$o/stat)" || echo gone
    cat /proc/[0-9]*/stat 2>/dev/null | awk "\$3 == \"Z\"" | wc -l'
is "$rc|$out" "0|parent=1
gone
0" "--pid: an orphan becomes the init's child and is reaped when it exits (no zombie)"

# --- signals sent to the launcher reach the job, through the init
for sig in TERM USR1 HUP; do
    rm -f "$io/ready" "$io/got"
    env --default-signal=INT,QUIT "$CH_RUN" --pid -b "$io:/mnt/0" "$img" -- sh -c \
        "trap 'echo $sig > /mnt/0/got; exit 42' $sig; echo up > /mnt/0/ready; while :; do sleep 0.05; done" &
    pid=$!
    wait_for "$io/ready"
    kill -s "$sig" "$pid"
    wait "$pid"; rc=$?
    is "$rc|$(cat "$io/got" 2>/dev/null)" "42|$sig" "--pid: SIG$sig to the launcher reaches the job's trap"
done
rm -f "$io/ready"
"${pid_run[@]}" sh -c 'echo up > /mnt/0/ready; exec sleep 300' &
pid=$!
wait_for "$io/ready"
kill -TERM "$pid"; wait "$pid"; rc=$?
is "$rc" 143 "--pid: a job killed by the forwarded SIGTERM gives 128+15"

# SIGTSTP stops the job (and the launcher); SIGCONT resumes it.
rm -f "$io/ready"
"${pid_run[@]}" sh -c 'echo up > /mnt/0/ready; i=0; while [ $i -lt 40 ]; do sleep 0.1; i=$((i + 1)); done' &
pid=$!
wait_for "$io/ready"
init=$(child_of "$pid"); job=$(child_of "$init")
kill -TSTP "$pid"
for i in $(seq 200); do [ "$(state "$job")$(state "$pid")" = TT ] && break; sleep 0.05; done
is "$(state "$job")$(state "$pid")" "TT" "--pid: SIGTSTP stops the job, and the launcher with it"
kill -CONT "$pid"
for i in $(seq 200); do [ "$(state "$job")" != T ] && break; sleep 0.05; done
isnt "$(state "$job")" "T" "--pid: SIGCONT resumes the job"
wait "$pid"; rc=$?
is "$rc" 0 "--pid: the resumed job finishes normally"

# --- when the job ends, the kernel kills what it left behind, and the
# launcher returns (a directory image's job would leave the sleep running;
# a SquashFS launcher without --pid would wait for it)
tag=$((7000 + RANDOM % 1000))
run timeout 120 "$CH_RUN" --pid "$img" -- sh -c "sleep $tag.5 >/dev/null 2>&1 & exit 3"
is "$rc" 3 "--pid: the launcher returns with the job's status while its background process ran"
for i in $(seq 100); do pgrep -u "$(id -u)" -f "sleep $tag.5" >/dev/null || break; sleep 0.1; done
is "$(pgrep -u "$(id -u)" -f "sleep $tag.5" | wc -l)" 0 "--pid: the background process is gone with the namespace"

# --- a SquashFS server stopped under the job (its FUSE connection aborted)
# is still told from the normal end, though the launcher's child is now
# the init, which can't be traced
if [ "$kind" = squash ] && [ -d /sys/fs/fuse/connections ] && grep -q fusectl /proc/self/mountinfo; then
    rm -f "$io/dev"; mkfifo "$io/go"
    "${pid_run[@]}" sh -c 'stat -c %d / > /mnt/0/dev; read x < /mnt/0/go; ls /bin >/dev/null 2>&1; exit 0' \
        > /dev/null 2> "$scratch/abort-err" &
    pid=$!
    wait_for "$io/dev"
    echo 1 > "/sys/fs/fuse/connections/$(cat "$io/dev")/abort"
    # The job goes on once the launcher has noticed (it warns at once).
    for i in $(seq 600); do grep -q "server stopped" "$scratch/abort-err" && break; sleep 0.1; done
    echo go > "$io/go"
    wait "$pid"; rc=$?
    is "$rc" 84 "--pid: a SquashFS server stopped under the job exits 84"
    like "$(cat "$scratch/abort-err")" "SquashFS server stopped" "... and says so"
else
    skip "--pid: a SquashFS server stopped under the job exits 84" "SquashFS only, with fusectl mounted"
    skip "... and says so" "SquashFS only, with fusectl mounted"
fi

# --- the init: no capability, and out of the job's reach
run "$CH_RUN" --pid "$img" -- sh -c 'cat /proc/1/environ >/dev/null 2>&1 && echo read || echo refused'
is "$out" "refused" "--pid: the job can't read the init's memory or environment"
run "$CH_RUN" --pid -u 0 "$img" -- sh -c 'cat /proc/1/environ >/dev/null 2>&1 && echo read || echo refused'
is "$out" "refused" "--pid -u 0: nor can a job that is root in its namespace"
run "$CH_RUN" --pid "$img" -- sh -c 'grep -E "^(CapPrm|CapEff):" /proc/1/status | tr -s "\t " " " | tr "\n" " "'
is "$out" "CapPrm: 0000000000000000 CapEff: 0000000000000000 " "--pid: the init holds no capability"

# --- not with --join
run "$CH_RUN" --pid --join-ct=2 --join-tag=pid-$$ "$img" -- true
is "$rc" 31 "--pid with --join: exit 31"
like "$err" "--pid can't be combined with --join" "... naming both options"
run "$CH_RUN" --pid --join-pid=$$ "$img" -- true
is "$rc" 31 "--pid with --join-pid: exit 31"
rm -f "$io/ready"
"${pid_run[@]}" sh -c 'echo up > /mnt/0/ready; exec sleep 300' &
pid=$!
wait_for "$io/ready"
init=$(child_of "$pid"); job=$(child_of "$init")
run "$CH_RUN" --join-pid="$job" "$img" -- true
is "$rc" 31 "--join-pid into a --pid job's container: exit 31"
like "$err" "process $job is in a PID namespace of its own" "... saying why"
kill -TERM "$pid"; wait "$pid"

done_testing
