#!/bin/bash
# SIGKILL of ch-run at random moments, from its first instruction to the
# end of its job: a directory image, a SquashFS image, and --join groups of
# 2 or 3 (either image) where one or several members are killed. After
# every trial, nothing is left on the host: no mount, no /dev/shm object,
# no temporary file, and no process once the job's time is up; the members
# of a group that were not killed end by themselves, normally or with an
# error message, and never hang.
#
# CHUTE_KILL9_TRIALS: the number of trials in all (default 210), split
# evenly between the three kinds. CHUTE_KILL9_VERBOSE=1: one line per
# trial (as a TAP comment). Half the trials kill within the first
# 15 ms (ch-run's start-up takes a few), half within the first 400 ms.
. "$CLI_LIB"
: "${KILL_AT:?}"

sqfs=$scratch/img.sqfs
mksquashfs "$imgdir" "$sqfs" -noappend -quiet -no-progress >/dev/null \
    || { echo "Bail out! mksquashfs failed"; exit 1; }

total=${CHUTE_KILL9_TRIALS:-210}
per=$(( (total + 2) / 3 ))
uid=$(id -u)
# Every process a trial starts has CHUTE_KILL9_MARK=$mark.TRIAL in its
# environment (ch-run passes it on to the job): that is how what is left of
# a trial is found, among the processes of other tests of this user.
mark=k9-$$-$RANDOM
# The runs' $TMPDIR, which is also their /tmp: private and empty, so that
# anything chute left there shows. (ch-run makes no temporary file of its
# own anywhere: only ch-convert does, next to its output.)
runtmp=$scratch/tmp
mkdir "$runtmp"

# The jobs. Each first leaves a note that it started, /tmp/s.TRIAL.PID.PPID
# (for a directory image the job is the launcher's process; for SquashFS
# the launcher is its parent); then it sleeps, or reads the image in a
# loop, or leaves a child behind that outlives it. None lasts more than
# 0.5 s.
jobs_=(
    'touch /tmp/s.$1.$$.$PPID; sleep 0.3'
    'touch /tmp/s.$1.$$.$PPID; for i in 1 2 3; do md5sum /bin/busybox >/dev/null; sleep 0.1; done'
    'touch /tmp/s.$1.$$.$PPID; (sleep 0.4; md5sum /bin/busybox >/dev/null) & sleep 0.2'
)

shm_mine () { find /dev/shm -mindepth 1 -maxdepth 1 -user "$uid" 2>/dev/null | sort; }
# Other tests of this user may run at the same time, and use /dev/shm: an
# object that a live process holds (see held) is not a trial's, since every
# process of a trial has ended by the time it is looked at.
# Processes that carry the mark of trial $1, one "PID ARGS" line each.
marked () {
    local f p
    for f in $(grep -lsazx -- "CHUTE_KILL9_MARK=$mark.$1" /proc/[0-9]*/environ); do
        p=${f#/proc/}; p=${p%/environ}
        echo "$p $(tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline")"
    done
}

mounts_base=$(< /proc/self/mountinfo)
shm_base=$(shm_mine)
# (ch-run writes nothing in a read-only image, not even a mount point.)
images () { find "$imgdir" -printf '%p %y %s %T@\n' | sort; md5sum < "$sqfs"; }
images_base=$(images)

# Per kind: counts, and the first failures in detail.
declare -A n_trials n_mount n_shm n_tmp n_proc n_hang n_status n_early n_late details
record () {  # KIND COUNTER TRIAL-DESCRIPTION WHAT...
    local kind=$1 counter=$2 desc=$3
    shift 3
    eval "$counter[\$kind]=\$(( \${$counter[\$kind]:-0} + 1 ))"
    local nd=${details[$kind.$counter]:-}
    if [ "$(printf '%s' "$nd" | grep -c '^trial')" -lt 5 ]; then
        nd+="trial $desc: $*"$'\n'
        details[$kind.$counter]=$nd
    fi
}

# trial KIND T IMAGE COPIES VICTIMS DELAY_US JOB [CH-RUN OPTION...]
trial () {
    local kind=$1 t=$2 im=$3 copies=$4 victims=$5 delay=$6 job=$7
    shift 7
    local result desc left i st p started
    rm -f "$scratch/o.$t".*
    result=$(TMPDIR=$runtmp CHUTE_KILL9_MARK=$mark.$t \
        "$KILL_AT" "$copies" "$victims" "$delay" 30000 "$scratch/o.$t" -- \
        "$CH_RUN" "$@" "$im" -- sh -c "${jobs_[$job]}" job "$t")
    desc="$t ($kind, ${copies} started, victims mask $victims, delay $delay us, job $job, $result)"
    n_trials[$kind]=$(( ${n_trials[$kind]:-0} + 1 ))
    [ -n "${CHUTE_KILL9_VERBOSE:-}" ] && echo "# trial $desc"
    [[ $result == at=* ]] || { record "$kind" n_status "$desc" "kill-at failed"; return; }

    # How each ended: a victim of SIGKILL, or on its own (by the job's end,
    # or because a member it depended on was killed), never hung.
    i=0 started=no
    for st in ${result#at=* }; do
        p=${st%%=*} st=${st#*=}
        if (( victims & (1 << i) )) && compgen -G "$runtmp/s.$t.*" | grep -Eq "\.$p(\.|\$)"; then
            started=yes
        fi
        if [ "$st" = hang ]; then
            record "$kind" n_hang "$desc" "ch-run #$i still running after 30 s: $(tail -n 3 "$scratch/o.$t.$i" 2>/dev/null)"
        elif (( victims & (1 << i) )); then
            :   # killed, or ended before the kill came
        else
            case $st in
                exit:0) ;;
                exit:31|exit:84)
                    # An error of the launcher, which says what happened.
                    grep -q '^ch-run\[[0-9]*\]: error: ' "$scratch/o.$t.$i" \
                        || record "$kind" n_status "$desc" "ch-run #$i: $st without an error message: $(cat "$scratch/o.$t.$i")" ;;
                *) record "$kind" n_status "$desc" "ch-run #$i not killed ended with $st: $(tail -n 3 "$scratch/o.$t.$i")" ;;
            esac
        fi
        i=$((i + 1))
    done

    # Nothing of the trial may run once its job's time is up: 0.5 s, plus
    # a generous grace for a loaded machine. A --join group's socket name
    # goes with the last process holding it; that may be a launcher, which
    # is not dumpable, so marked() can't see it: the socket is waited for
    # too (a sanitizer build's processes take a while to exit).
    local bound
    for i in $(seq 150); do
        left=$(marked "$t")
        bound=$(grep -c "@chute-join/$uid/$mark-$t\$" /proc/net/unix)
        [ -z "$left" ] && [ "$bound" = 0 ] && break
        sleep 0.1
    done
    [ -n "$left" ] && record "$kind" n_proc "$desc" "processes left: $(echo $left)"
    [ "$bound" = 0 ] || record "$kind" n_proc "$desc" "the --join socket is still bound"
    # (If some were left, give them no chance to spoil the next trial.)
    for p in $(printf '%s\n' "$left" | awk 'NF {print $1}'); do kill -KILL "$p" 2>/dev/null; done

    if [ $started = yes ]; then
        n_late[$kind]=$(( ${n_late[$kind]:-0} + 1 ))
    else
        n_early[$kind]=$(( ${n_early[$kind]:-0} + 1 ))
    fi
    rm -f "$runtmp/s.$t".*   # the job's own notes; anything else is chute's

    left=$(diff <(printf '%s\n' "$mounts_base") /proc/self/mountinfo | grep '^[<>]')
    if [ -n "$left" ]; then
        record "$kind" n_mount "$desc" "mount table changed: $left"
        mounts_base=$(< /proc/self/mountinfo)
    fi
    left=$(comm -13 <(printf '%s\n' "$shm_base") <(shm_mine))
    if [ -n "$left" ]; then
        shm_base=$(shm_mine)
        left=$(for p in $left; do held "$p" || echo "$p"; done)
        [ -n "$left" ] && record "$kind" n_shm "$desc" "new in /dev/shm: $(echo $left)"
    fi
    left=$(ls -A "$runtmp")
    if [ -n "$left" ]; then
        record "$kind" n_tmp "$desc" "left in \$TMPDIR: $(echo $left)"
        rm -rf "${runtmp:?}"/* "$runtmp"/.[!.]* 2>/dev/null
    fi
    rm -f "$scratch/o.$t".*
}

# A random delay: within 400 ms for an odd N; for an even one, within 15 ms,
# or every other time within 4 ms: a directory job starts in about 2 ms, and
# with 15 ms alone too few kills (2 of 70 once, in CI) landed before it did.
delay_for () {  # N
    local r=$(( RANDOM * 32768 + RANDOM ))
    if (( $1 % 2 )); then echo $(( r % 400001 ))
    elif (( $1 % 4 )); then echo $(( r % 15001 ))
    else echo $(( r % 4001 )); fi
}

t=0
for k in $(seq "$per"); do
    t=$((t + 1)); trial dir "$t" "$imgdir" 1 1 "$(delay_for $k)" $((k % 3))
    t=$((t + 1)); trial squash "$t" "$sqfs" 1 1 "$(delay_for $k)" $((k % 3))
    t=$((t + 1))
    copies=$(( 2 + RANDOM % 2 ))
    victims=$(( 1 + RANDOM % ((1 << copies) - 1) ))   # one, several, or all
    if (( k % 2 )); then im=$sqfs; else im=$imgdir; fi
    trial join "$t" "$im" "$copies" "$victims" "$(delay_for $((k / 2)))" $((k % 3)) \
        --join-ct="$copies" --join-tag="$mark-$t"
done

for kind in dir squash join; do
    n=${n_trials[$kind]:-0}
    what="$kind: SIGKILL in $n trials"
    [ "$kind" = join ] && what="--join groups of 2 or 3 (directory and SquashFS): SIGKILL of one or more members in $n trials"
    check () {  # COUNTER DESCRIPTION
        local c
        eval "c=\${$1[\$kind]:-0}"
        if [ "$c" = 0 ]; then ok "$what: $2"; else
            not_ok "$what: $2" "$c trials failed; the first:" "${details[$kind.$1]}"
        fi
    }
    is "$n" "$per" "$kind: $per trials ran"
    check n_mount "no mount left on the host"
    check n_shm "nothing left in /dev/shm"
    check n_tmp "nothing left in \$TMPDIR"
    check n_proc "no process and no --join socket left once the job's time is up"
    check n_hang "no ch-run hangs"
    check n_status "ch-run not killed ends with its job's status or an error message"
    # The trials covered both ch-run's start-up and the job's run.
    early=${n_early[$kind]:-0} late=${n_late[$kind]:-0} least=$(( n / 20 > 0 ? n / 20 : 1 ))
    if [ "$early" -ge "$least" ] && [ "$late" -ge "$least" ]; then
        ok "$kind: kills landed before the job started ($early trials) and while it ran ($late)"
    else
        not_ok "$kind: kills landed before the job started ($early trials) and while it ran ($late)" \
            "expected at least $least of each"
    fi
done

is "$(images)" "$images_base" "the images are unchanged"

done_testing
