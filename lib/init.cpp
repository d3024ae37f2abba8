#include "chute/init.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/supervise.hpp"

namespace chute::init {

namespace {

// Every descriptor but stdin, stdout and stderr: the image, the image
// server's pipes, the launcher's signalfd, whatever the set-up opened
// (the job has its own copies of those it inherits).
void close_others() {
  if (::close_range(3, ~0U, 0) == 0) return;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return;
  std::vector<int> fds;
  while (struct dirent* e = ::readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (fd > 2 && fd != ::dirfd(d)) fds.push_back(fd);
  }
  ::closedir(d);
  for (int fd : fds) ::close(fd);
}

// What the init keeps once the job has started: stderr, for its messages.
// Its stdin and stdout become /dev/null (a pipe the job writes to ends with
// the job, not with a copy in the init). It can't be traced or read by a
// job that is not root in its namespace (not dumpable), and has no
// capability left: it only waits and sends signals to its own user's
// processes.
void let_go() {
  close_others();
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::close(null);
  }
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &hdr, data) != 0)
    log::warn("--pid: the init can't drop its capabilities: {}", std::strerror(errno));
}

}  // namespace

void run(const job::Spec& spec) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t job = ::fork();
  if (job < 0) {
    int e = errno;
    throw SysError(e, "--pid: can't start the job in its PID namespace");
  }
  if (job == 0) {
    try {
      job::throw_failure(spec, job::exec(spec));
    } catch (const std::exception& e) {
      log::emit("error", describe(e));
      ::_exit(exit_code_of(e));
    }
  }
  log::verbose("job: pid {} in its PID namespace, under an init", job);
  let_go();
  const int code = supervise::as_init(job);
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace chute::init
