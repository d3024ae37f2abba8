#include "chute/job.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/log.hpp"

extern char** environ;

namespace chute::job {

void finish(Spec& spec) {
  spec.argv.clear();
  for (auto& a : spec.argv_store) spec.argv.push_back(a.data());
  spec.argv.push_back(nullptr);
  spec.envp = spec.env.envp();
}

namespace {

bool to_null(int fd) {
  int n = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (n < 0) return false;
  ::dup2(n, fd);
  ::close(n);
  return true;
}

}  // namespace

Failure exec(const Spec& spec) noexcept {
  if (spec.set_mask) ::sigprocmask(SIG_SETMASK, &spec.mask, nullptr);
  if (spec.set_cpus) ::sched_setaffinity(0, sizeof spec.cpus, &spec.cpus);
  if (spec.cwd && ::chdir(spec.cwd->c_str()) != 0) return {Step::kCwd, errno};
  // Nothing the job executes can gain privileges (setuid files, file caps).
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return {Step::kNoNewPrivs, errno};
  // With -qqq the job's stderr goes to /dev/null, but an exec failure must
  // still be reported: keep the real stderr, closed by a successful exec.
  int saved = -1;
  if (spec.verbosity <= log::kQuiet1 && !to_null(STDOUT_FILENO)) return {Step::kDevNull, errno};
  if (spec.verbosity <= log::kQuiet3) {
    saved = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (!to_null(STDERR_FILENO)) return {Step::kDevNull, errno};
  }
  // execvp(3) searches the PATH of environ, which must be the job's.
  environ = const_cast<char**>(spec.envp.data());
  ::execvp(spec.argv[0], spec.argv.data());
  int e = errno;
  if (saved >= 0) ::dup2(saved, STDERR_FILENO);
  return {Step::kExec, e};
}

void throw_failure(const Spec& spec, Failure f) {
  switch (f.step) {
    case Step::kCwd:
      throw SysError(f.err, fmt::format("can't cd to {}", *spec.cwd));
    case Step::kNoNewPrivs:
      throw SysError(f.err, "can't set no_new_privs");
    case Step::kDevNull:
      throw SysError(f.err, "can't open /dev/null");
    case Step::kExec:
    case Step::kNone:
      break;
  }
  throw SysError(f.err, fmt::format("can't execve(2): {}", spec.argv_store[0]), kExitExec);
}

}  // namespace chute::job
