#!/bin/bash
# ch-run under a real Slurm: srun of many tasks on directory and SquashFS
# images, with and without --join; a batch script; the variables of Slurm and
# its PMI and PMIx plugins reaching the job; the PMIx server's directory
# visible in the container. Needs a cluster (SLURM_CONF; test/run-all as root
# starts one with test/slurm/cluster), else it skips.
. "$CLI_LIB"
. "$(dirname "$CLI_LIB")/lib-slurm.sh"
need_slurm

sq=$scratch/img.sqfs
mksquashfs "$imgdir" "$sq" -noappend -quiet -no-progress >/dev/null \
    || { echo "Bail out! mksquashfs failed"; exit 1; }
images=("dir:$imgdir" "squash:$sq")
[ ! -e "$imgdir/var/spool/slurmd" ] && ok "the image has no /var/spool/slurmd" \
    || not_ok "the image has no /var/spool/slurmd"

# What each task prints, one line.
report='echo "rank=$SLURM_PROCID ntasks=$SLURM_NTASKS localid=$SLURM_LOCALID job=$SLURM_JOB_ID step=$SLURM_STEP_ID ns=$(readlink /proc/self/ns/user)"'

# check_ranks DESCRIPTION N: $out has one line from each of ranks 0..N-1 of
# one step of N tasks.
check_ranks () {
    local ranks
    ranks=$(grep -Eo 'rank=[0-9]+' <<<"$out" | cut -d= -f2 | sort -n | tr '\n' ' ')
    is "$ranks" "$(seq -s ' ' 0 $(($2 - 1))) " "$1: every rank ran once"
    is "$(grep -c "ntasks=$2 " <<<"$out")" "$2" "$1: each sees SLURM_NTASKS=$2"
    is "$(count_distinct "$out" 'job=[0-9]+ step=[0-9]+')" 1 "$1: all in one job step"
}

# --- srun -n 4 -O, each image kind, without and with --join
for entry in "${images[@]}"; do
    k=${entry%%:*} im=${entry#*:}

    # (Each rank runs a second: a namespace's inode number can be reused
    # once it is gone, so ranks that don't overlap may report the same.)
    run tsrun -n 4 -O "$CH_RUN" "$im" -- sh -c "sleep 1; $report"
    exited_ok "srun -n 4 -O ch-run ($k image)"
    check_ranks "srun -n 4 -O ch-run ($k image)" 4
    is "$(count_distinct "$out" 'ns=[^ ]+')" 4 \
        "srun -n 4 -O ch-run ($k image): without --join, a user namespace each"
    unlike "$out" "ns=$host_userns" "srun -n 4 -O ch-run ($k image): none is the host's"
    shm_clean "srun -n 4 -O ch-run ($k image)"

    # The ranks of a group share a container while any of them runs: give
    # them time to overlap, as MPI ranks do (a rank that starts after all
    # the others have ended builds a container of its own).
    run tsrun -n 4 -O "$CH_RUN" --join "$im" -- sh -c "sleep 1; $report"
    exited_ok "srun -n 4 -O ch-run --join ($k image)"
    check_ranks "srun -n 4 -O ch-run --join ($k image)" 4
    is "$(count_distinct "$out" 'ns=[^ ]+')" 1 \
        "srun -n 4 -O ch-run --join ($k image): one user namespace for all ranks"
    unlike "$out" "ns=$host_userns" "srun -n 4 -O ch-run --join ($k image): not the host's"
    shm_clean "srun -n 4 -O ch-run --join ($k image)"
done

# --- a batch script: steps of ch-run on both kinds, with and without --join;
# each step's lines are labelled, and a failed step says so
batch=$scratch/job.sbatch
{
    echo '#!/bin/sh'
    echo '#SBATCH --ntasks=4'
    echo '#SBATCH --overcommit'
    echo '#SBATCH --time=5'
    for entry in "${images[@]}"; do
        k=${entry%%:*} im=${entry#*:}
        for j in '' --join; do
            label="$k${j:+-join}"
            printf "srun %q %s %q -- sh -c %q || echo \"step %s failed: \$?\"\n" \
                "$CH_RUN" "$j" "$im" "sleep 1; echo $label \$($report)" "$label"
        done
    done
    echo 'echo "batch done in job $SLURM_JOB_ID"'
} > "$batch"
run timeout 30 sbatch --parsable -o "$scratch/job.out" -e "$scratch/job.err" "$batch"
jobid=${out%%;*}
if [ "$rc" -ne 0 ] || ! [[ $jobid =~ ^[0-9]+$ ]]; then
    not_ok "sbatch accepts the script" "rc $rc" "stdout: $out" "stderr: $err"
else
    ok "sbatch accepts the script (job $jobid)"
    if wait_job "$jobid"; then
        is "$job_state $job_exit" "COMPLETED 0:0" "the batch job completes with exit 0"
    else
        not_ok "the batch job completes with exit 0" "still $job_state after $launch_timeout s; cancelled"
    fi
    [ ! -s "$scratch/job.err" ] || { echo "# the job's stderr:"; sed 's/^/#   /' "$scratch/job.err" | head -20; }
    joblog=$(cat "$scratch/job.out" 2>/dev/null)
    like "$joblog" "^batch done in job $jobid\$" "the batch job's output file is complete"
    for entry in "${images[@]}"; do
        k=${entry%%:*}
        for label in "$k" "$k-join"; do
            out=$(grep "^$label rank=" <<<"$joblog")
            err="$(grep "step $label failed" <<<"$joblog") (the job's stderr is shown above)"
            check_ranks "sbatch: srun ch-run ${label/-join/ --join} ($k image)" 4
            like "$out" "job=$jobid " "sbatch: srun ch-run ${label/-join/ --join} ($k image): SLURM_JOB_ID is the batch job's"
            if [ "$label" = "$k-join" ]; then
                n=1
            else
                n=4
            fi
            is "$(count_distinct "$out" 'ns=[^ ]+')" "$n" \
                "sbatch: srun ch-run ${label/-join/ --join} ($k image): $n user namespace(s)"
        done
    done
fi
shm_clean "sbatch"

# --- the example batch script, as a user would submit it
if [ -n "${SLURM_EXAMPLE:-}" ] && [ -r "$SLURM_EXAMPLE" ]; then
    run timeout 30 env CH_RUN="$CH_RUN" sbatch --parsable -n 2 -o "$scratch/example.out" \
        "$SLURM_EXAMPLE" "$sq"
    jobid=${out%%;*}
    if [ "$rc" -eq 0 ] && wait_job "$jobid"; then
        is "$job_state $job_exit" "COMPLETED 0:0" "examples/slurm/run.sbatch completes with exit 0"
        joblog=$(cat "$scratch/example.out" 2>/dev/null)
        is "$(grep -c 'Hello from rank' <<<"$joblog")" 2 \
            "examples/slurm/run.sbatch: both ranks say hello"
    else
        not_ok "examples/slurm/run.sbatch completes with exit 0" "rc $rc, state ${job_state:-?}" "$err"
    fi
    [ "${job_exit:-}" = 0:0 ] \
        || { echo "# its output:"; sed 's/^/#   /' "$scratch/example.out" 2>/dev/null | head -20; }
    shm_clean "examples/slurm/run.sbatch"
else
    skip "examples/slurm/run.sbatch completes" "SLURM_EXAMPLE not set"
fi

# --- Slurm's, PMI's and PMIx's variables reach the job unchanged: compare,
# in one task, the environment outside and inside the container. Variables of
# the caller's pass through srun too.
envs='env > "$0/host.env"; "$1" "$2" -- env > "$0/ctr.env"'
for entry in "${images[@]}"; do
    k=${entry%%:*} im=${entry#*:}
    rm -f "$scratch"/{host,ctr}.env
    run env OMPI_MCA_chute_probe=from-caller PMIX_MCA_chute_probe=from-caller \
        timeout -k 10 "$launch_timeout" srun --mpi=pmix -n 1 sh -c "$envs" "$scratch" "$CH_RUN" "$im"
    exited_ok "srun --mpi=pmix ch-run env ($k image)"
    same_vars "$scratch/host.env" "$scratch/ctr.env" SLURM_ \
        "srun --mpi=pmix ($k image): SLURM_ variables reach the job"
    same_vars "$scratch/host.env" "$scratch/ctr.env" PMIX_ \
        "srun --mpi=pmix ($k image): PMIX_ variables reach the job"
    same_vars "$scratch/host.env" "$scratch/ctr.env" OMPI_ \
        "srun --mpi=pmix ($k image): OMPI_ variables reach the job"
    like "$(cat "$scratch/ctr.env" 2>/dev/null)" '^PMIX_SERVER_TMPDIR=/' \
        "srun --mpi=pmix ($k image): PMIX_SERVER_TMPDIR is set"

    rm -f "$scratch"/{host,ctr}.env
    run tsrun --mpi=pmi2 -n 1 sh -c "$envs" "$scratch" "$CH_RUN" "$im"
    exited_ok "srun --mpi=pmi2 ch-run env ($k image)"
    same_vars "$scratch/host.env" "$scratch/ctr.env" PMI_ \
        "srun --mpi=pmi2 ($k image): PMI_ variables reach the job"
done
shm_clean "the variables"

# --- the PMIx server's directory (under slurmd's spool directory) is there
# in the container, at the same path, with the same files, and writable: the
# PMIx client maps and locks its shared-memory store there
look='d=${PMIX_SERVER_TMPDIR%/}; ls -A "$d" | sort; echo from-container > "$d/chute-test-write" && echo written'
for entry in "${images[@]}"; do
    k=${entry%%:*} im=${entry#*:}
    rm -f "$scratch"/{host,ctr}.ls
    run tsrun --mpi=pmix -n 1 sh -c '
        d=${PMIX_SERVER_TMPDIR%/}
        echo "$d" > "$0/dir"
        ls -A "$d" | sort > "$0/host.ls"
        "$1" "$2" -- sh -c "$3" > "$0/ctr.ls" 2>&1
        cat "$d/chute-test-write" 2>/dev/null; rm -f "$d/chute-test-write"' \
        "$scratch" "$CH_RUN" "$im" "$look"
    pdir=$(cat "$scratch/dir" 2>/dev/null)
    case $pdir in
        /tmp/*) echo "# note: PMIX_SERVER_TMPDIR ($pdir) is under /tmp, which ch-run binds anyway" ;;
    esac
    host_ls=$(cat "$scratch/host.ls" 2>/dev/null)
    ctr_ls=$(cat "$scratch/ctr.ls" 2>/dev/null)
    isnt "$host_ls" "" "srun --mpi=pmix ($k image): the PMIx server's directory $pdir has files"
    is "$ctr_ls" "$host_ls
written" "srun --mpi=pmix ($k image): the container sees them at the same path and can write there"
    is "$out" from-container "srun --mpi=pmix ($k image): what the container wrote there is on the host"
done
shm_clean "the PMIx directory"

done_testing
