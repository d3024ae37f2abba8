#!/bin/bash
# MPI jobs in containers: examples/mpi/mpi-probe.c, built against the host's
# Open MPI into an image made at test time (test/mpi/mkimage-mpi), launched by
# mpirun and by srun --mpi=pmix, on directory and SquashFS images. With
# cross-memory attach (CMA) forced for Open MPI's shared-memory transport,
# ranks must share a container: that works with --join and fails without.
# The srun part needs a cluster (SLURM_CONF), else it skips.
. "$CLI_LIB"
. "$(dirname "$CLI_LIB")/lib-slurm.sh"
need_mpi

mimg=$scratch/mpi
run "$MKIMAGE_MPI" "$mimg" "${MPI_PROBE_SRC:-}"
if [ "$rc" -ne 0 ]; then
    echo "Bail out! test/mpi/mkimage-mpi failed: $err"
    exit 1
fi
ok "the MPI image builds from the host's Open MPI"
[ -e "$mimg/var" ] && [ ! -e "$mimg/var/spool/slurmd" ] \
    && ok "the MPI image has /var but no /var/spool/slurmd" \
    || not_ok "the MPI image has /var but no /var/spool/slurmd"
msq=$scratch/mpi.sqfs
mksquashfs "$mimg" "$msq" -noappend -quiet -no-progress >/dev/null \
    || { echo "Bail out! mksquashfs failed"; exit 1; }
images=("dir:$mimg" "squash:$msq")

# Shared memory between the ranks, with CMA for large messages and nothing to
# fall back on: Open MPI aborts when the ranks are in different user
# namespaces.
export OMPI_MCA_pml=ob1
export OMPI_MCA_btl=self,vader
export OMPI_MCA_btl_vader_single_copy_mechanism=cma
# Open MPI's segments go to the test's own directory, not /dev/shm, where
# other tests running at the same time look for leftovers (ch-run binds /tmp).
case $scratch in
    /tmp/*) export OMPI_MCA_btl_vader_backing_directory=$scratch ;;
esac
cma_refused='CMA support is not available due to different user namespaces'

# check_probe DESCRIPTION N: the last run was N ranks of the probe that all
# passed, in one user namespace that is not the host's.
check_probe () {
    local lines
    exited_ok "$1"
    lines=$(grep '^mpi-probe: rank=' <<<"$out")
    is "$(grep -c " size=$2 .*allreduce=ok" <<<"$lines")" "$2" "$1: $2 ranks, allreduce sum right"
    is "$(grep -c 'pingpong=ok' <<<"$lines")" 2 "$1: 1 MiB ping-pong right byte for byte"
    is "$(count_distinct "$lines" 'userns=[^ ]+')" 1 "$1: all ranks in one user namespace"
    unlike "$lines" "userns=$host_userns" "$1: not the host's"
}

# check_refused DESCRIPTION: the last run failed, as CMA between containers
# must.
check_refused () {
    isnt "$rc" 0 "$1: fails"
    # Open MPI's help texts break lines anywhere, and mpirun sometimes
    # garbles the ranks' help text as they exit ("ORTE_ERROR_LOG: Data unpack
    # would read past end of buffer"); the rank's own last words stay.
    like "$(printf '%s\n%s' "$out" "$err" | tr -s ' \n' '  ')" \
        "$cma_refused|vader BTL is aborting|[Rr]ead -1|process_vm_readv" \
        "$1: Open MPI's shared-memory transport gives up (CMA refused)"
    unlike "$out" 'pingpong=ok' "$1: no ping-pong passed"
}

# --- mpirun (as an ordinary user: more ranks than cores need --oversubscribe)
for entry in "${images[@]}"; do
    k=${entry%%:*} im=${entry#*:}

    run tmpirun -np 2 "$CH_RUN" --join "$im" -- mpi-probe
    check_probe "mpirun -np 2 ch-run --join ($k image)" 2
    shm_clean "mpirun -np 2 ch-run --join ($k image)"

    run tmpirun --oversubscribe -np 4 "$CH_RUN" --join "$im" -- mpi-probe
    check_probe "mpirun --oversubscribe -np 4 ch-run --join ($k image)" 4
    shm_clean "mpirun --oversubscribe -np 4 ch-run --join ($k image)"

    # The host's Open MPI injected over the image's (--mpi=host, the
    # built-in profile): the same ranks work, and the libraries are binds.
    run tmpirun -np 2 "$CH_RUN" --join --mpi=host "$im" -- mpi-probe
    check_probe "mpirun -np 2 ch-run --join --mpi=host ($k image)" 2
    shm_clean "mpirun -np 2 ch-run --join --mpi=host ($k image)"
    run "$CH_RUN" --mpi=host "$im" -- sh -c 'grep -c " /[^ ]*libmpi\.so\.40[.0-9]* " /proc/self/mountinfo'
    is "$rc/$out" "0/1" "ch-run --mpi=host ($k image): the image's libmpi.so.40 is the host's, bound over it"

    run tmpirun -np 2 "$CH_RUN" "$im" -- mpi-probe
    check_refused "mpirun -np 2 ch-run without --join ($k image)"
    shm_clean "mpirun -np 2 ch-run without --join ($k image)"
done

# Open MPI's variables reach the job unchanged (compared in one rank).
rm -f "$scratch"/{host,ctr}.env
run tmpirun -np 1 sh -c 'env > "$0/host.env"; "$1" "$2" -- env > "$0/ctr.env"' \
    "$scratch" "$CH_RUN" "$mimg"
exited_ok "mpirun ch-run env"
same_vars "$scratch/host.env" "$scratch/ctr.env" 'OMPI_|PMIX_' \
    "mpirun: OMPI_ and PMIX_ variables reach the job"

# --- srun --mpi=pmix: Slurm's PMIx server, no mpirun (Debian's Open MPI
# direct-launches only this way)
why=$(slurm_problem)
if [ -n "$why" ] && [ -n "$required" ]; then
    not_ok "srun --mpi=pmix ch-run mpi-probe" "$why"
elif [ -n "$why" ]; then
    skip "srun --mpi=pmix ch-run mpi-probe" "$why"
else
    for entry in "${images[@]}"; do
        k=${entry%%:*} im=${entry#*:}

        run tsrun --mpi=pmix -n 2 "$CH_RUN" --join "$im" -- mpi-probe
        check_probe "srun --mpi=pmix -n 2 ch-run --join ($k image)" 2
        shm_clean "srun --mpi=pmix -n 2 ch-run --join ($k image)"

        run tsrun --mpi=pmix -n 8 -O "$CH_RUN" --join "$im" -- mpi-probe
        check_probe "srun --mpi=pmix -n 8 -O ch-run --join ($k image)" 8
        shm_clean "srun --mpi=pmix -n 8 -O ch-run --join ($k image)"

        run tsrun --mpi=pmix -n 2 "$CH_RUN" --join --mpi=host "$im" -- mpi-probe
        check_probe "srun --mpi=pmix -n 2 ch-run --join --mpi=host ($k image)" 2
        shm_clean "srun --mpi=pmix -n 2 ch-run --join --mpi=host ($k image)"

        run tsrun --mpi=pmix -n 2 "$CH_RUN" "$im" -- mpi-probe
        check_refused "srun --mpi=pmix -n 2 ch-run without --join ($k image)"
        shm_clean "srun --mpi=pmix -n 2 ch-run without --join ($k image)"
    done
fi

done_testing
