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
// becomes readable if the image server stops. REMOTE_SERVER: the server is
// another process that outlives this one unless it is killed (a --join
// peer's), so a job that failed once it is gone failed for that. Returns
// the exit status: the job's, 128+N if it was killed by signal N, 31 or 49
// if it could not start, or kExitServerDied if the server stopped while the
// job ran.
int run(const std::function<void()>& setup, int server_stopped_fd,
        const std::function<void()>& started, bool remote_server = false);

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
