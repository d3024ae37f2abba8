#!/bin/bash
# --join without a batch system: processes of one group share one container
# (directory and SquashFS images); counts and tags from options and from
# Open MPI's and Slurm's variables; peers with other options are refused;
# too few or too many peers, a first process that dies or fails, a peer
# killed at any moment: nothing hangs and nothing is left behind (no
# /dev/shm object, no process, no mount). --join-pid.
. "$CLI_LIB"

sqfs=$scratch/img.sqfs
mksquashfs "$imgdir" "$sqfs" -noappend -quiet -no-progress >/dev/null \
    || { echo "Bail out! mksquashfs failed"; exit 1; }
# Other test files run at the same time: compare /dev/shm by owner, and
# find our processes by this file's tags.
shm_mine () { find /dev/shm -mindepth 1 -maxdepth 1 -user "$(id -u)" | sort; }
shm_before=$(shm_mine)
t=jt$$
out_of () { cat "$scratch/out.$1" 2>/dev/null; }
ns='echo "$(readlink /proc/self/ns/user) $(readlink /proc/self/ns/mnt)"'
host_ns="$(readlink /proc/self/ns/user) $(readlink /proc/self/ns/mnt)"
# A group shares a container while any of its processes runs; one that
# starts after all the others have ended builds its own. Jobs that check
# sharing last long enough to overlap, as MPI ranks do.
ns_overlap="sleep 0.5; $ns"
# Our join helpers still running ("ch-run join"), and launchers of this file.
leftovers () { pgrep -u "$(id -u)" -f "ch-run join|$t" | grep -v "^$$\$" | wc -l; }
# The helpers end once their group has; allow them a moment: up to 15 s, a
# generous grace for a loaded machine (5 s once proved too short in CI, with
# nothing left by the time the list was printed).
# group N COMMAND...: start N copies of COMMAND at once, the output of copy
# I (stdout and stderr) in $scratch/out.I, and wait for them all. Sets codes
# (their exit statuses in order, "S0,S1,...,") and fails (how many were not 0).
group () {
    local n=$1 i p s pids=()
    shift
    for ((i = 0; i < n; i++)); do
        "$@" >"$scratch/out.$i" 2>&1 &
        pids+=($!)
    done
    codes= fails=0
    for p in "${pids[@]}"; do
        wait "$p"; s=$?
        codes="$codes$s,"
        [ "$s" = 0 ] || fails=$((fails + 1))
    done
}
wait_no_leftovers () {
    local i
    for i in $(seq 150); do [ "$(leftovers)" = 0 ] && return 0; sleep 0.1; done
    pgrep -a -u "$(id -u)" -f "ch-run join|$t" | sed 's/^/#   left: /'
    return 1
}

for kind in dir squash; do
    if [ $kind = dir ]; then im=$imgdir; else im=$sqfs; fi

    # --- a group of 8 shares one container
    pids=()
    for i in 0 1 2 3 4 5 6 7; do
        timeout 60 "$CH_RUN" --join-ct=8 --join-tag="$t-$kind-8" "$im" -- sh -c "$ns_overlap" \
            >"$scratch/out.$i" 2>"$scratch/err.$i" &
        pids+=($!)
    done
    fails=0
    for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
    is "$fails" 0 "$kind: 8 processes with --join-ct=8 all succeed"
    is "$(cat "$scratch"/out.[0-7] | sort -u | wc -l)" 1 "$kind: all 8 report one user and one mount namespace"
    isnt "$(out_of 0)" "$host_ns" "$kind: and it is not the host's"
    is "$(cat "$scratch"/err.[0-7])" "" "$kind: nothing on stderr"

    # --- per-process environment, --cd and command
    pids=()
    for i in 0 1 2 3; do
        timeout 60 "$CH_RUN" --join-ct=4 --join-tag="$t-$kind-env" --set-env=RANK=$i \
            --cd=/mnt/$i "$im" -- sh -c 'echo "$RANK $(pwd) $CH_RUNNING"' >"$scratch/out.$i" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    is "$(out_of 0)|$(out_of 1)|$(out_of 2)|$(out_of 3)" \
       "0 /mnt/0 Weird Al Yankovic|1 /mnt/1 Weird Al Yankovic|2 /mnt/2 Weird Al Yankovic|3 /mnt/3 Weird Al Yankovic" \
       "$kind: environment, --cd and the command are each process's own"

    # --- the count from Open MPI's variable; the tag from Slurm's
    pids=()
    for i in 0 1 2; do
        OMPI_COMM_WORLD_LOCAL_SIZE=3 SLURM_JOB_ID=$t SLURM_STEP_ID=$kind \
            timeout 60 "$CH_RUN" -j "$im" -- sh -c "$ns_overlap" >"$scratch/out.$i" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    is "$(cat "$scratch"/out.[0-2] | sort -u | wc -l)|$(grep -c mnt "$scratch"/out.[0-2] | grep -c :1)" "1|3" \
       "$kind: -j takes the count from OMPI_COMM_WORLD_LOCAL_SIZE and the tag from Slurm's job step"

    # --- too few: nobody waits for the missing ones
    start=$(date +%s)
    timeout 30 "$CH_RUN" --join-ct=4 --join-tag="$t-$kind-few" "$im" -- true & p1=$!
    timeout 30 "$CH_RUN" --join-ct=4 --join-tag="$t-$kind-few" "$im" -- true; r2=$?
    wait $p1; r1=$?
    is "$r1|$r2|$(( $(date +%s) - start < 10 ))" "0|0|1" "$kind: 2 of 4 expected processes: both run and end at once"
    wait_no_leftovers && ok "$kind: too few: nothing of the group is left running" \
        || not_ok "$kind: too few: nothing of the group is left running"

    # ... and the helper that waits for them holds none of the job's pipes
    start=$(date +%s)
    x=$(timeout 30 "$CH_RUN" --join-ct=3 --join-tag="$t-$kind-pipe" "$im" -- echo hi 2>&1)
    is "$x|$(( $(date +%s) - start < 5 ))" "hi|1" "$kind: \$(ch-run --join ...) returns when the job ends, peers or not"

    # --- too many: the extra one makes a container of its own
    group 3 timeout 60 "$CH_RUN" --join-ct=2 --join-tag="$t-$kind-many" "$im" -- sh -c "sleep 0.5; $ns"
    is "$fails|$(cat "$scratch"/out.[0-2] | sort | uniq -c | awk '{print $1}' | sort | tr '\n' ' ')" \
       "0|1 2 " "$kind: 3 processes with --join-ct=2: all succeed, two share a container, the third has its own"
    wait_no_leftovers && ok "$kind: too many: nothing left running" || not_ok "$kind: too many: nothing left running"

    # --- peers with other options are refused, naming the difference
    # The first process's job says when it runs (its container exists, and
    # it holds the group), and runs until the refused peers are done: a
    # fixed wait would be too short on a slow (sanitizer) build. (The host's
    # TMPDIR is the container's /tmp.)
    inside=/tmp/$(basename "$scratch")
    rm -f "$scratch/diff-ready" "$scratch/diff-done"
    timeout 60 "$CH_RUN" --join-ct=3 --join-tag="$t-$kind-diff" "$im" -- \
        sh -c "touch $inside/diff-ready; while [ ! -e $inside/diff-done ]; do sleep 0.1; done" & w=$!
    for _ in $(seq 300); do [ -e "$scratch/diff-ready" ] && break; sleep 0.1; done
    run timeout 30 "$CH_RUN" --join-ct=3 --join-tag="$t-$kind-diff" -b /etc:/mnt/5 "$im" -- true
    is "$rc" 31 "$kind: a peer with another --bind is refused: exit 31"
    like "$err" "options differ.*--bind.*/etc on /mnt/5" "$kind: the message names the extra bind"
    run timeout 30 "$CH_RUN" --join-ct=3 --join-tag="$t-$kind-diff" -u 0 "$im" -- true
    like "$rc|$err" "^31\|.*--uid: 0 here" "$kind: a peer with another --uid is refused, naming it"
    other=$([ $kind = dir ] && echo "$sqfs" || echo "$imgdir")
    run timeout 30 "$CH_RUN" --join-ct=3 --join-tag="$t-$kind-diff" "$other" -- true
    like "$rc|$err" "^31\|.*image" "$kind: a peer with another image is refused, naming it"
    touch "$scratch/diff-done"
    wait $w
    is "$?" 0 "$kind: the first process is not disturbed by refused peers"

    # --- a peer killed at random moments; the others go on; nothing is left
    shm0=$(shm_mine)
    fails=0
    for trial in $(seq 10); do
        pids=()
        for i in 0 1 2 3; do
            # (no timeout(1) here: the kill must hit ch-run itself)
            "$CH_RUN" --join-ct=4 --join-tag="$t-$kind-kill$trial" "$im" -- sh -c 'sleep 0.3; cat /bin/busybox >/dev/null' \
                >/dev/null 2>&1 &
            pids+=($!)
        done
        victim=${pids[$((RANDOM % 4))]}
        sleep "0.0$((RANDOM % 10))"
        kill -9 "$victim" 2>/dev/null
        { for p in "${pids[@]}"; do
            wait "$p"; r=$?
            # The victim dies of SIGKILL; a SquashFS group loses its image if
            # the victim served it (84, or a job killed by SIGBUS): the others
            # must end, with their own status.
            [ "$p" = "$victim" ] && continue
            case $r in 0|84|135|137) ;; *) fails=$((fails + 1)); echo "# trial $trial: exit $r" ;; esac
        done; } 2>/dev/null  # (bash's "Killed" notices)
    done
    is "$fails" 0 "$kind: 10 groups of 4 with one process killed at a random moment: the others end normally"
    wait_no_leftovers && ok "$kind: after the kills, nothing left running" || not_ok "$kind: after the kills, nothing left running"
    is "$(shm_mine)" "$shm0" "$kind: after the kills, nothing new in /dev/shm"
    is "$(grep -c fuse.chute /proc/self/mountinfo)" 0 "$kind: after the kills, no mount on the host"
done

# --- SquashFS: the first process's launcher serves the image for its peers
# as long as they run, even after its own job has ended
timeout 60 "$CH_RUN" --join-ct=2 --join-tag="$t-serve" "$sqfs" -- true & w=$!
sleep 0.1
run timeout 60 "$CH_RUN" --join-ct=2 --join-tag="$t-serve" "$sqfs" -- sh -c 'sleep 1.5; md5sum /bin/busybox | cut -c1-32'
is "$rc|$out" "0|$(md5sum < "$imgdir/bin/busybox" | cut -c1-32)" \
   "SquashFS: a peer still reads the image after the first process's job has ended"
wait $w
is "$?" 0 "SquashFS: and the first process ends with its own job's status"

# ... and a peer whose image server is killed ends with 84, naming the problem
"$CH_RUN" --join-ct=2 --join-tag="$t-srvkill" "$sqfs" -- sleep 10 & w=$!
sleep 0.3
timeout 60 "$CH_RUN" --join-ct=2 --join-tag="$t-srvkill" "$sqfs" -- sleep 10 \
    >"$scratch/out.p" 2>"$scratch/err.p" & p=$!
sleep 0.5
kill -9 $w
{ wait $w; } 2>/dev/null
wait $p; r=$?
is "$r" 84 "SquashFS: a peer whose image server is killed exits with 84"
like "$(cat "$scratch/err.p")" "server stopped" "SquashFS: and says the server stopped"
wait_no_leftovers && ok "SquashFS: server killed: nothing left running" || not_ok "SquashFS: server killed: nothing left running"

# --- stand-ins for a first process that misbehaves. stand_in MODE TAG holds
# the group name of TAG: "dies" takes one request and exits without an
# answer; "deaf" binds the name and never accepts; "odd" answers "ok" with
# no namespaces. Its pid is in $fake.
stand_in () {
    python3 - "$1" "chute-join/$(id -u)/$2" <<'EOF' &
import socket, sys, time
mode, name = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind("\0" + name)
if mode == "deaf":
    time.sleep(15)
    sys.exit(0)
s.listen(8)
c, _ = s.accept()
c.recv(65536)
if mode == "dies":
    time.sleep(0.3)
else:
    c.send(b"ok\n")
    c.recv(1)
EOF
    fake=$!
    sleep 0.3
}

# The first process dies before it answers: the peer takes over.
stand_in dies "$t-takeover"
run timeout 30 "$CH_RUN" -v --join-ct=2 --join-tag="$t-takeover" "$imgdir" -- echo took-over
wait $fake
is "$rc|$out" "0|took-over" "a peer whose first process dies before answering takes over"
like "$err" "ended before letting us in" "and says so with -v"

# A name bound by something that never accepts: a clear error, bounded.
stand_in deaf "$t-takeover-deaf"
start=$(date +%s)
run timeout 30 "$CH_RUN" --join-ct=2 --join-tag="$t-takeover-deaf" "$imgdir" -- true
kill $fake 2>/dev/null; wait $fake 2>/dev/null
is "$rc|$(( $(date +%s) - start <= 12 ))" "31|1" "a name held by something that never accepts: exit 31 within seconds"
like "$err" "does not accept peers: choose another tag" "and the message says what to do"

# An answer without namespaces: refused, not trusted.
stand_in odd "$t-takeover-odd"
run timeout 30 "$CH_RUN" --join-ct=2 --join-tag="$t-takeover-odd" "$imgdir" -- true
wait $fake
like "$rc|$err" "^31\|.*unexpected answer" "an answer without namespaces is an error, exit 31"

# --- the first process can't build the container: its peers fail with it
for im in "$imgdir" "$sqfs"; do
    k=$([ "$im" = "$sqfs" ] && echo squash || echo dir)
    group 3 timeout 30 "$CH_RUN" --join-ct=3 --join-tag="$t-fail-$k" -b "$CH_RUN":/mnt/0 "$im" -- true
    is "$codes" "31,31,31," "$k: a container that can't be built: every process of the group exits 31"
    is "$(grep -c "one is a directory, the other is not" "$scratch"/out.[0-2] | grep -c ':1$')" 3 \
       "$k: each says why"
    wait_no_leftovers && ok "$k: failed build: nothing left running" || not_ok "$k: failed build: nothing left running"
done

# --- a corrupt or truncated SquashFS image: the process that would build
# the container checks it (its peers leave that to it): every process of
# the group exits 31 naming the file and the problem, and no job runs.
size=$(stat -c %s "$sqfs")
head -c $((size / 2)) "$sqfs" > "$scratch/half.sqfs"
cp "$sqfs" "$scratch/table.sqfs"
inode_table=$(python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(96); print(struct.unpack_from("<Q", d, 64)[0])' "$sqfs")
python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(b"\xff" * 24)' \
    "$scratch/table.sqfs" "$inode_table"
for bad in half table; do
    group 3 timeout 30 "$CH_RUN" --join-ct=3 --join-tag="$t-bad-$bad" "$scratch/$bad.sqfs" -- \
        sh -c "echo ran"
    is "$codes" "31,31,31," "$bad SquashFS image with --join: every process of the group exits 31"
    is "$(grep -l "invalid SquashFS image: $scratch/$bad.sqfs: \(truncated\|corrupt\)" "$scratch"/out.[0-2] | wc -l)" 3 \
       "$bad SquashFS image with --join: each names the file and the problem"
    is "$(grep -c "^ran" "$scratch"/out.[0-2] | grep -vc ':0$')" 0 "$bad SquashFS image with --join: no job ran"
    wait_no_leftovers && ok "$bad SquashFS image with --join: nothing left running" \
        || not_ok "$bad SquashFS image with --join: nothing left running"
done
run "$CH_RUN" --join-ct=1 --join-tag="$t-bad-one" "$scratch/half.sqfs" -- echo ran
like "$rc|$err" "^31\|.*invalid SquashFS image: $scratch/half.sqfs: truncated" \
     "truncated SquashFS image with --join-ct=1 (no group): exit 31, named"

# --- the peers' jobs see the container's /etc/passwd and /etc/group, which
# the first process wrote: their user's and group's names from the host
me=$(id -un); my_group=$(id -gn)
pw='echo "$(grep -c "^'"$me"':x:$(id -u):$(id -g):" /etc/passwd) $(grep -c "^'"$my_group"':x:$(id -g):" /etc/group)"'
for im in "$imgdir" "$sqfs"; do
    k=$([ "$im" = "$sqfs" ] && echo squash || echo dir)
    group 3 timeout 60 "$CH_RUN" --join-ct=3 --join-tag="$t-pw-$k" "$im" -- sh -c "sleep 0.5; $ns; $pw"
    is "$fails|$(grep -h "^user:" "$scratch"/out.[0-2] | sort -u | wc -l)" "0|1" \
       "$k: 3 processes share one container"
    is "$(grep -hc '^1 1$' "$scratch"/out.[0-2] | tr '\n' ' ')" "1 1 1 " \
       "$k: each job finds its user and group in the container's /etc/passwd and /etc/group"
done

# --- bad input
run "$CH_RUN" --join-tag=a/b "$imgdir" -- true
like "$rc|$(tail -n 1 <<<"$err")" "^31\|.*invalid character '/' in tag" "--join-tag with a slash: exit 31, named"
run "$CH_RUN" --join-tag="$(printf 'a\tb')" "$imgdir" -- true
like "$rc|$(tail -n 1 <<<"$err")" "^31\|.*invalid character" "--join-tag with a tab: exit 31"
run "$CH_RUN" --join-tag="$(head -c 65 /dev/zero | tr '\0' x)" "$imgdir" -- true
like "$rc|$(tail -n 1 <<<"$err")" "^31\|.*longer than 64" "--join-tag longer than 64 characters: exit 31"
run env SLURM_STEP_ID='../x' "$CH_RUN" -j --join-ct=2 "$imgdir" -- true
like "$rc|$err" "^31\|.*SLURM_STEP_ID" "a bad tag from SLURM_STEP_ID: exit 31, naming the variable"
run env -u OMPI_COMM_WORLD_LOCAL_SIZE -u SLURM_STEP_TASKS_PER_NODE -u SLURM_CPUS_ON_NODE \
    "$CH_RUN" -j "$imgdir" -- true
like "$rc|$err" "^31\|.*can't find peer count" "-j with no count anywhere: exit 31"
for bad in 0 -1 x 2x; do
    run "$CH_RUN" --join-ct="$bad" "$imgdir" -- true
    like "$rc|$err" "^31\|.*--join-ct" "--join-ct=$bad: exit 31"
done
run "$CH_RUN" --join-ct=1 --join-tag="$t-one" "$imgdir" -- echo alone
is "$rc|$out" "0|alone" "--join-ct=1: runs alone"

# --- --join-pid
"$CH_RUN" "$imgdir" -- sleep 5 & target=$!
sleep 0.5
run "$CH_RUN" --join-pid=$target "$imgdir" -- sh -c "$ns"
is "$rc|$out" "0|$(readlink /proc/$target/ns/user) $(readlink /proc/$target/ns/mnt)" \
   "--join-pid enters the user and mount namespaces of that process"
kill $target; wait $target 2>/dev/null
run "$CH_RUN" --join-pid=$target "$imgdir" -- true
like "$rc|$err" "^31\|.*--join-pid: can't find process $target" "--join-pid of a process that is gone: exit 31"
run "$CH_RUN" --join-pid=1 --join "$imgdir" -- true
like "$rc|$err" "^31\|.*can't be combined" "--join-pid with --join: exit 31"

is "$(shm_mine)" "$shm_before" "nothing of any test here is left in /dev/shm"
is "$(grep -c fuse.chute /proc/self/mountinfo)" 0 "no mount is left on the host"

done_testing
