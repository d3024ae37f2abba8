// The launcher as supervisor, for images that need a server while the job
// runs (SquashFS): it forks the job, forwards the signals a batch system
// sends, reaps every descendant the job leaves behind, and ends with the
// job's status once the last of them has exited.
#pragma once

#include <sched.h>

#include <functional>

#include <signal.h>

namespace chute::supervise {

// Exit status when the image server stopped before the job ended.
inline constexpr int kExitServerDied = 84;

// The signals forwarded to the job: SIGTERM, SIGINT, SIGHUP, SIGQUIT,
// SIGUSR1, SIGUSR2, SIGCONT, SIGTSTP (and SIGCHLD, for the supervisor).
// Block them before starting any thread, so that no thread takes them.
void block_signals();

// Start the child that sets the container up and becomes the job: SETUP
// runs in it, sharing this process's memory (CLONE_VM | CLONE_VFORK) while
// this thread waits, and ends by executing the job; if it throws, the error
// is printed and the child exits with its code. The child is killed if the
// launcher dies, and starts with the supervisor's signals still blocked
// (SETUP's exec restores them). Then STARTED runs, and the launcher, a
// subreaper, forwards signals and reaps everything. SERVER_STOPPED_FD
// becomes readable if the image server stops. Returns the exit status: the
// job's, 128+N if it was killed by signal N, 31 or 49 if it could not start,
// or kExitServerDied if the server stopped while the job ran. REMOTE_SERVER:
// the server is another process that outlives this one unless it is killed
// (a --join peer's), so a job that failed once it is gone failed for that.
//
// With NEW_PID_NS (ch-run --pid), the child is PID 1 of a new PID
// namespace, a copy of this process (fork(2)) rather than sharing its
// memory, and SETUP ends by becoming the namespace's init (see init.hpp),
// which exits with the job's status; STARTED runs as soon as it is
// forked. Signals go to the init, which forwards them to the job. The
// calling thread can't start threads afterwards.
int run(const std::function<void()>& setup, int server_stopped_fd,
        const std::function<void()>& started, bool new_pid_ns = false,
        bool remote_server = false);

// For PID 1 of a PID namespace, whose child JOB is the job: forward the
// signals above to the job as run() does (the init's own stay blocked),
// reap every process the namespace's orphans leave, and return the job's
// exit status (128+N if it was killed by signal N) as soon as it has ended.
int as_init(pid_t job);

// The signal mask the job should start with: the current one, without the
// signals block_signals() blocked.
sigset_t job_mask();

// Pin the calling thread (and the threads it starts from now on) to the CPU
// it runs on: while ch-run sets the container up, each FUSE request is then
// a wake-up on the same CPU rather than an interrupt to another one. Returns
// the mask to restore.
cpu_set_t pin_to_this_cpu();

// Give every thread of the process MASK again.
void restore_cpus(const cpu_set_t& mask);

}  // namespace chute::supervise
