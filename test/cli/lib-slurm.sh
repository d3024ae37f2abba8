# Helpers for the tests that launch ch-run through Slurm and Open MPI.
# Sourced after lib.sh.
#
# Environment:
#   SLURM_CONF           the test cluster's configuration (test/slurm/cluster
#                        up prints it; test/run-all passes it on)
#   CHUTE_TEST_SLURM=1   the cluster and Open MPI must work: a missing or
#                        broken one fails the tests instead of skipping them
#                        (test/run-all sets it when it runs as root, where
#                        setup has installed them)
#   CHUTE_TEST_SLURM_ERROR  why the runner could not bring the cluster up
#   MKIMAGE_MPI, MPI_PROBE_SRC  the MPI image builder and the probe's source

required=${CHUTE_TEST_SLURM:-}

# skip_all REASON: one skipped test point, which both meson and test/run-all
# count as a skip.
skip_all () {
    echo "ok 1 - $(basename "$0" .sh) # SKIP $1"
    echo "1..1"
    exit 0
}

# unusable REASON: fail when required, else skip everything.
unusable () {
    if [ -n "$required" ]; then
        echo "Bail out! $1"
        exit 1
    fi
    skip_all "$1"
}

# slurm_problem: why there is no cluster to submit to (nothing when there
# is one, answering within 10 s).
slurm_problem () {
    local c st
    if [ -n "${CHUTE_TEST_SLURM_ERROR:-}" ]; then
        echo "the test cluster did not come up: $CHUTE_TEST_SLURM_ERROR"
        return
    fi
    if [ -z "${SLURM_CONF:-}" ]; then
        echo "no Slurm cluster: SLURM_CONF is unset (test/run-all as root starts one with test/slurm/cluster)"
        return
    fi
    for c in srun sbatch sinfo squeue scontrol scancel; do
        command -v "$c" >/dev/null || { echo "$c not found (apt-get install slurm-client)"; return; }
    done
    if ! st=$(timeout 10 sinfo -h -o %t 2>&1); then
        echo "sinfo failed with SLURM_CONF=$SLURM_CONF: $st"
    elif ! grep -Eq '^(idle|mix|alloc)' <<<"$st"; then
        echo "the cluster of SLURM_CONF=$SLURM_CONF has no usable node (sinfo: $st)"
    fi
}

# need_slurm: a cluster to submit to, else skip (or fail, when required)
# everything.
need_slurm () {
    local why
    why=$(slurm_problem)
    [ -z "$why" ] || unusable "$why"
}

# need_mpi: Open MPI's compiler and launcher, and the image builder.
need_mpi () {
    local c
    for c in "${MPICC:-mpicc}" mpirun ompi_info; do
        command -v "$c" >/dev/null || unusable "$c not found (apt-get install openmpi-bin libopenmpi-dev)"
    done
    [ -x "${MKIMAGE_MPI:-}" ] || unusable "MKIMAGE_MPI is not set to test/mpi/mkimage-mpi"
}

# Every launch runs under a time limit: an unsatisfiable srun waits forever.
launch_timeout=${CHUTE_TEST_LAUNCH_TIMEOUT:-120}
tsrun () { timeout -k 10 "$launch_timeout" srun "$@"; }
tmpirun () { timeout -k 10 "$launch_timeout" mpirun "$@"; }

# exited_ok DESCRIPTION: the last run exited 0; when it did not, the checks
# that follow say so without repeating its stderr.
exited_ok () {
    is "$rc" 0 "$1: exit 0"
    [ "$rc" -eq 0 ] || err="(shown above, at \"$1: exit 0\")"
}

# This user's objects in /dev/shm, but for Open MPI's own short-lived
# segments (the MPI test moves those elsewhere; a job running in another test
# at the same moment may still have some).
shm_mine () {
    find /dev/shm -mindepth 1 -maxdepth 1 -user "$(id -u)" -printf '%f\n' 2>/dev/null \
        | grep -Ev '^(vader_segment|sm_segment|ompi|pmix)' | sort
}
shm_base=$(shm_mine)

# shm_clean DESCRIPTION: after a test, /dev/shm holds nothing new (given a
# moment for the last process to finish removing its objects).
shm_clean () {
    local new i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        new=$(comm -13 <(printf '%s\n' "$shm_base") <(shm_mine) | grep . || true)
        [ -z "$new" ] && break
        sleep 0.3
    done
    if [ -z "$new" ]; then
        ok "$1: nothing left in /dev/shm"
    else
        not_ok "$1: nothing left in /dev/shm" "left behind: $(echo $new)"
    fi
}

# count_distinct TEXT REGEX: how many distinct matches of REGEX (grep -o).
count_distinct () {
    printf '%s\n' "$1" | grep -Eo -- "$2" | sort -u | grep -c .
}

host_userns=$(readlink /proc/self/ns/user)

# wait_job JOBID: wait, at most $launch_timeout s, for a batch job to end;
# $job_state and $job_exit get its state and exit code (scontrol's words).
# A job still running then is cancelled, and the wait fails.
wait_job () {
    local line deadline=$((SECONDS + launch_timeout))
    job_state='' job_exit=''
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! line=$(timeout 10 scontrol show job -o "$1" 2>&1); then
            # Forgotten already (MinJobAge): ended, how is unknown.
            grep -q 'Invalid job id' <<<"$line" && { job_state=FORGOTTEN; return 0; }
        fi
        job_state=$(grep -Eo 'JobState=[A-Z_]+' <<<"$line" | cut -d= -f2)
        job_exit=$(grep -Eo ' ExitCode=[0-9:]+' <<<"$line" | cut -d= -f2)
        case $job_state in
            ''|PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED) sleep 0.2 ;;
            *) return 0 ;;
        esac
    done
    timeout 10 scancel "$1"
    return 1
}

# same_vars HOST-ENV CONTAINER-ENV REGEX DESCRIPTION: every variable of the
# file HOST-ENV (env's output) whose name matches REGEX is in CONTAINER-ENV
# with the same value, and there is at least one.
same_vars () {
    local want missing
    want=$(grep -E "^($3)[^=]*=" "$1")
    missing=$(grep -vxF -f "$2" <<<"$want")
    if [ -z "$want" ]; then
        not_ok "$4" "no variable matching ^($3) in the job's own environment"
    elif [ -n "$missing" ]; then
        not_ok "$4" "missing or changed in the container:" "$missing"
    else
        ok "$4 ($(grep -c . <<<"$want") variables)"
    fi
}
