// The launcher as supervisor, for images that need a server while the job
// runs (SquashFS): it forks the job, forwards the signals a batch system
// sends, reaps every descendant the job leaves behind, and ends with the
// job's status once the last of them has exited.
#pragma once

#include <sched.h>

#include <functional>

#include "chute/job.hpp"

namespace chute::supervise {

// Exit status when the image server stopped before the job ended.
inline constexpr int kExitServerDied = 84;

// The signals forwarded to the job: SIGTERM, SIGINT, SIGHUP, SIGQUIT,
// SIGUSR1, SIGUSR2, SIGCONT, SIGTSTP (and SIGCHLD, for the supervisor).
// Block them before starting any thread, so that no thread takes them.
void block_signals();

// Start the job as a child, made with clone(CLONE_VM | CLONE_VFORK) (no copy
// of the launcher's page tables, which fork(2) would make only to throw them
// away at exec): it restores the signal mask and CPUs, asks to be killed if
// the launcher dies, and executes SPEC. The parent becomes a subreaper and
// supervises; SERVER_STOPPED_FD becomes readable if the image server stops.
// Returns the exit status: the job's, 128+N if it was killed by signal N,
// 31 or 49 if it could not start, or kExitServerDied if the server stopped
// while the job ran.
// STARTED runs in the parent as soon as the job has been executed.
int run(job::Spec& spec, int server_stopped_fd, const std::function<void()>& started);

// Pin the calling thread (and the threads it starts from now on) to the CPU
// it runs on: while ch-run sets the container up, each FUSE request is then
// a wake-up on the same CPU rather than an interrupt to another one. Returns
// the mask to restore.
cpu_set_t pin_to_this_cpu();

// Give every thread of the process MASK again.
void restore_cpus(const cpu_set_t& mask);

}  // namespace chute::supervise
