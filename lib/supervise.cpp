#include "chute/supervise.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <sched.h>
#include <sys/mman.h>
#include <fmt/core.h>
#include <string>
#include <vector>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/sys.hpp"

namespace chute::supervise {

namespace {

constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGTSTP};

sigset_t handled_set() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : kForwarded) sigaddset(&s, sig);
  sigaddset(&s, SIGCHLD);
  return s;
}

// Whether process PID leaves signal SIG to its default action (neither
// ignored nor caught), from /proc/PID/status.
bool default_action(pid_t pid, int sig) {
  std::string status;
  try {
    status = sys::read_file(fmt::format("/proc/{}/status", pid));
  } catch (const std::exception&) {
    return false;
  }
  const unsigned long long bit = 1ULL << (sig - 1);
  for (const char* key : {"\nSigIgn:\t", "\nSigCgt:\t"}) {
    const auto at = status.find(key);
    if (at == std::string::npos) return false;
    const char* p = status.data() + at + std::strlen(key);
    unsigned long long mask = 0;
    std::from_chars(p, status.data() + status.size(), mask, 16);
    if (mask & bit) return false;
  }
  return true;
}

// Every process whose parent is this one: the job, and whatever it left
// behind that was reparented here (the subreaper).
std::vector<pid_t> children() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto f = sys::try_open(fmt::format("/proc/self/task/{}/children", e->d_name), O_RDONLY);
    if (!f) continue;
    std::string text;
    try {
      text = sys::read_all(f->get(), "children");
    } catch (const std::exception&) {
      continue;
    }
    const char* p = text.data();
    const char* end = p + text.size();
    while (p < end) {
      pid_t pid = 0;
      auto [next, ec] = std::from_chars(p, end, pid);
      if (ec == std::errc()) out.push_back(pid);
      p = next + 1;
    }
  }
  ::closedir(d);
  return out;
}

int status_code(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return kExitMisc;
}

std::string describe_status(int st) {
  if (WIFSIGNALED(st)) {
    const char* name = ::sigabbrev_np(WTERMSIG(st));
    return name ? fmt::format("killed by SIG{}", name)
                : fmt::format("killed by signal {}", WTERMSIG(st));
  }
  return fmt::format("exit status {}", status_code(st));
}

// Whether FD is readable or hung up now.
bool ready_now(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

}  // namespace

void block_signals() {
  sigset_t s = handled_set();
  if (::sigprocmask(SIG_BLOCK, &s, nullptr) != 0) {
    int e = errno;
    throw SysError(e, "can't block signals");
  }
}

cpu_set_t pin_to_this_cpu() {
  cpu_set_t all;
  CPU_ZERO(&all);
  ::sched_getaffinity(0, sizeof all, &all);
  int cpu = ::sched_getcpu();
  if (cpu >= 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ::sched_setaffinity(0, sizeof one, &one);
  }
  return all;
}

void restore_cpus(const cpu_set_t& mask) {
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    pid_t tid = 0;
    std::from_chars(e->d_name, e->d_name + std::strlen(e->d_name), tid);
    if (tid > 0) ::sched_setaffinity(tid, sizeof mask, &mask);
  }
  ::closedir(d);
}

namespace {

struct SetupArgs {
  const std::function<void()>* setup;
  pid_t parent;
  bool new_pid_ns;
  int parent_fd;  // new PID namespace: a pidfd of the launcher, or -1
};

int setup_main(void* arg) {
  auto* a = static_cast<SetupArgs*>(arg);
  // If the launcher dies (even by SIGKILL), nothing serves the image any
  // more: take the job down with it rather than leave it failing on I/O.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (a->new_pid_ns) {
    // In a new PID namespace getppid() says 0 whoever the parent is: ask
    // the launcher's pidfd, readable once it has exited.
    struct pollfd p = {a->parent_fd, POLLIN, 0};
    if (a->parent_fd >= 0 && ::poll(&p, 1, 0) != 0) ::_exit(kExitMisc);
    log::set_pid(a->parent);
  } else if (::getppid() != a->parent) {
    ::_exit(kExitMisc);
  }
  try {
    (*a->setup)();
  } catch (const std::exception& e) {
    log::emit("error", describe(e));
    ::_exit(exit_code_of(e));
  }
  ::_exit(kExitMisc);
}

enum class Role {
  kLauncher,        // of the job itself: stop with it, wait for every descendant
  kLauncherOfInit,  // of an init that forwards to the job in turn
  kInit,            // PID 1 of the job's PID namespace: done when the job is reaped
};

// Forward the signals read from SIGFD to JOB, reap every child, and return
// the exit status: the job's once every child has been reaped, or, for an
// init, as soon as the job has been (the kernel kills the rest of the
// namespace when its init exits). REMOTE_SERVER: see run().
int watch(pid_t pid, int sigfd, int server_stopped_fd, Role role, bool remote_server) {
  bool job_alive = true;
  int job_status = 0;
  bool server_died = false;
  bool server_stopped = false;
  for (;;) {
    // Reap whatever has ended; stop when no child at all is left.
    for (;;) {
      int st = 0;
      pid_t w = ::waitpid(-1, &st, WNOHANG | __WALL);
      if (w > 0) {
        if (w == pid) {
          log::trace("stage: job reaped");
          job_alive = false;
          job_status = st;
          log::verbose("job exited: status {}", status_code(st));
          if (role == Role::kInit) return status_code(st);
        }
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == ECHILD) {
        log::trace("stage: every process reaped");
        // Another process's server (a --join peer's) ends first only when
        // it is killed. Its end and the job's then race: a job that reads
        // the image dies of SIGBUS at once, and may be reaped before the
        // server's end is seen, or before the check of the mount
        // namespaces below finds it still running. A job that failed while
        // that server is gone failed for that.
        if (!server_died && remote_server && job_status != 0 &&
            (server_stopped || ready_now(server_stopped_fd)))
          server_died = true;
        if (server_died) {
          log::emit("error", fmt::format("SquashFS server stopped before the job ended (job: {})",
                                         describe_status(job_status)));
          return kExitServerDied;
        }
        return status_code(job_status);
      }
      break;  // children remain, none has ended
    }
    struct pollfd fds[2] = {{sigfd, POLLIN, 0}, {server_stopped_fd, POLLIN, 0}};
    int n = ::poll(fds, server_stopped || server_stopped_fd < 0 ? 1 : 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      throw SysError(e, "can't poll");
    }
    if (server_stopped_fd >= 0 && !server_stopped && (fds[1].revents & (POLLIN | POLLHUP))) {
      server_stopped = true;
      // The server also stops, normally, when the last process using the
      // image has left its mount namespace (the mount goes with it), which
      // may be just before that process can be reaped. It died early only
      // if some process still has a mount namespace: its mountinfo opens
      // (which, unlike its ns/mnt, needs no right to trace it: the init of
      // --pid can't be traced).
      for (pid_t c : children()) {
        Fd info(::open(fmt::format("/proc/{}/mountinfo", c).c_str(), O_RDONLY | O_CLOEXEC));
        if (info) {
          server_died = true;
          log::warn("SquashFS server stopped while the job is running");
          break;
        }
      }
    }
    if (!(fds[0].revents & POLLIN)) continue;
    struct signalfd_siginfo si;
    if (::read(sigfd, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) continue;
    int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGCHLD) continue;
    // A terminal sends its signals to the whole foreground process group,
    // the job included: forward only what was sent to the launcher alone.
    // (In the job's PID namespace a process group led from outside has no
    // number: both sides read 0, and the test holds.)
    bool from_tty = si.ssi_code == SI_KERNEL && ::getpgid(pid) == ::getpgrp();
    if (!from_tty) {
      if (job_alive) {
        log::verbose("forwarding signal {} to the job", sig);
        // The kernel drops SIGTSTP whose action is to stop when the job's
        // process group is orphaned, as under batch systems that start
        // each task in a session of its own: stop the job with SIGSTOP,
        // the same action, instead. A job that catches SIGTSTP gets it.
        // An init decides for its job (a SIGSTOP would stop the init,
        // not the job).
        const bool stop = sig == SIGTSTP && role != Role::kLauncherOfInit &&
                          default_action(pid, SIGTSTP);
        ::kill(pid, stop ? SIGSTOP : sig);
      } else {
        for (pid_t c : children()) ::kill(c, sig);
      }
    }
    // Stop too, so the shell sees the job stopped. (An init can't stop.)
    if (sig == SIGTSTP && role != Role::kInit) ::raise(SIGSTOP);
  }
}

Fd handled_signalfd() {
  sigset_t set = handled_set();
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) {
    int e = errno;
    throw SysError(e, "can't create signalfd");
  }
  return Fd(sfd);
}

}  // namespace

sigset_t job_mask() {
  sigset_t m;
  ::sigprocmask(SIG_SETMASK, nullptr, &m);
  for (int sig : kForwarded) sigdelset(&m, sig);
  sigdelset(&m, SIGCHLD);
  return m;
}

namespace {

// Start the set-up child as a copy of this process (fork(2)); WHAT is the
// error if that fails.
pid_t fork_setup(SetupArgs& args, const char* what) {
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid == 0) setup_main(&args);
  if (pid < 0) {
    int e = errno;
    throw SysError(e, what);
  }
  return pid;
}

}  // namespace

int run(const std::function<void()>& setup, int server_stopped_fd,
        const std::function<void()>& started, bool new_pid_ns, bool remote_server) {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    int e = errno;
    throw SysError(e, "can't become a subreaper");
  }
  Fd sigfd = handled_signalfd();
  pid_t pid;
  if (new_pid_ns) {
    // The child is PID 1 of a new PID namespace and stays, as its init:
    // it can't share this process's memory as below, and is a copy of it
    // (fork(2), which also leaves the other threads' locks in order).
    // After unshare(2), this thread can start no more threads (EINVAL):
    // the image server's are started before, or by those threads.
    Fd self(static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0)));
    if (::unshare(CLONE_NEWPID) != 0) {
      int e = errno;
      throw SysError(e, "--pid: can't create a PID namespace");
    }
    SetupArgs args{&setup, ::getpid(), true, self.get()};
    pid = fork_setup(args, "can't start the job's PID namespace");
    log::verbose("init of the job's PID namespace: pid {}", pid);
  } else {
    SetupArgs args{&setup, ::getpid(), false, -1};
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer can't follow a child that runs on a stack of its
    // own in this process's memory (it sees wild stack accesses), and a
    // copy (fork(2)) can hang: another thread may hold a lock of ASan's
    // allocator at that moment, and GCC 12's ASan doesn't take its locks
    // around fork(), so the copy waits forever for a lock nobody in it
    // holds (seen: an MPI test's set-up child). vfork(2) makes the same
    // child as below, but on this thread's stack, which ASan handles (it
    // intercepts vfork); the child never returns here: it executes the job
    // or exits.
    std::fflush(stdout);
    std::fflush(stderr);
    pid = ::vfork();
    if (pid == 0) setup_main(&args);
    if (pid < 0) {
      int e = errno;
      throw SysError(e, "can't start the job");
    }
    log::verbose("job: pid {}", pid);
#else
    // The child shares this process's memory until it executes the job
    // (CLONE_VM | CLONE_VFORK, as posix_spawn(3) does), which spares
    // copying the page tables; this thread waits meanwhile, so the child
    // can use its heap and thread-local state, and the serving threads go
    // on answering the child's FUSE requests. It gets its own file table,
    // working directory and mount namespace.
    constexpr size_t kStack = 1 << 20;
    void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
      int e = errno;
      throw SysError(e, "can't allocate the job's set-up stack");
    }
    std::fflush(stdout);
    std::fflush(stderr);
    pid = ::clone(setup_main, static_cast<char*>(stack) + kStack,
                  CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    int clone_err = errno;
    ::munmap(stack, kStack);
    if (pid < 0) throw SysError(clone_err, "can't start the job");
    log::verbose("job: pid {}", pid);
#endif
  }
  log::trace("stage: job executed");
  started();
  return watch(pid, sigfd.get(), server_stopped_fd,
               new_pid_ns ? Role::kLauncherOfInit : Role::kLauncher, remote_server);
}

int as_init(pid_t job) {
  Fd sigfd = handled_signalfd();
  return watch(job, sigfd.get(), -1, Role::kInit, false);
}

}  // namespace chute::supervise
