// PID 1 of the job's PID namespace (ch-run --pid): a minimal init, in the
// process that set the container up. It starts the job as its child,
// forwards the signals the launcher passes on to it, reaps whatever
// orphans the namespace's processes leave, and exits with the job's status
// as soon as the job has ended; the kernel then kills what is left in the
// namespace. Without it, PID 1 would be the job itself, which reaps
// nothing it did not start and ignores the signals it does not catch.
#pragma once

#include "chute/job.hpp"

namespace chute::init {

// In the process that is PID 1 of a new PID namespace, after the pivot
// (its /proc is the namespace's): start the job SPEC describes as PID 2,
// let go of everything the job may need and the init does not (descriptors
// other than stderr, its input and output, its capabilities), and stay as
// the init until the job ends. Exits with the job's status, 128+N if it
// was killed by signal N, or 31 or 49 if it could not be started.
[[noreturn]] void run(const job::Spec& spec);

}  // namespace chute::init
