#include "chute/job.hpp"

#include <fcntl.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cctype>
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
  // Capabilities: the bounding set as planned, then nothing ambient or
  // inheritable. The permitted set stays: with no_new_privs, execve(2)
  // keeps at most what was permitted before it, and a job that is root in
  // its namespace should keep its bounding set there (any other job loses
  // everything as it executes). Kernels older than the last capability
  // libcap knows answer EINVAL for it: nothing to drop there.
  for (int c : spec.drop_bounding)
    if (::cap_drop_bound(static_cast<cap_value_t>(c)) != 0 && errno != EINVAL)
      return {Step::kCaps, errno};
  // One call for the whole ambient set (libcap's cap_reset_ambient() asks
  // about each capability first); EINVAL: a kernel without ambient sets.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return {Step::kCaps, errno};
  {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {};
    if (::capget(&hdr, data) != 0) return {Step::kCaps, errno};
    data[0].inheritable = data[1].inheritable = 0;
    if (::capset(&hdr, data) != 0) return {Step::kCaps, errno};
  }
  // execvp(3) searches the PATH of environ, which must be the job's.
  environ = const_cast<char**>(spec.envp.data());
  // The filter last: nothing of ch-run's own runs under it but the check
  // and execve(2).
  if (!spec.seccomp.code.empty()) {
    if (int e = seccomp::load(spec.seccomp)) return {Step::kSeccomp, e};
    if (int e = seccomp::check(spec.seccomp)) return {Step::kSeccompCheck, e};
  }
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
    case Step::kCaps:
      throw SysError(f.err, "can't drop capabilities");
    case Step::kSeccomp:
      throw SysError(f.err, "can't load the seccomp filter");
    case Step::kSeccompCheck: {
      const int want = spec.seccomp.kexec_errno;
      auto name = [](int e) {
        return e <= 0 ? std::string("0") : fmt::format("-1 ({})", ::strerrorname_np(e));
      };
      throw Error(fmt::format("seccomp filter self-test failed: kexec_load(2) returned {}, "
                              "expected {}", name(f.err), name(want)));
    }
    case Step::kExec:
    case Step::kNone:
      break;
  }
  throw SysError(f.err, fmt::format("can't execve(2): {}", spec.argv_store[0]), kExitExec);
}

std::vector<int> caps_to_drop(uid_t uid, const std::vector<int>& cap_drop) {
  const int last = static_cast<int>(::cap_max_bits());
  std::vector<int> out;
  const bool all = uid != 0 || std::find(cap_drop.begin(), cap_drop.end(), -1) != cap_drop.end();
  if (all) {
    for (int c = 0; c < last; ++c) out.push_back(c);
    return out;
  }
  for (int c : cap_drop)
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return out;
}

std::vector<int> parse_cap_list(std::string_view text) {
  std::vector<int> out;
  if (text.empty()) throw Error("--cap-drop: empty list");
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string token(text.substr(start, comma - start));
    std::string name = token;
    start = comma + 1;
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (name == "all") {
      out.push_back(-1);
      continue;
    }
    if (name.rfind("cap_", 0) != 0) name = "cap_" + name;
    cap_value_t v = 0;
    if (name.size() <= 4 || ::cap_from_name(name.c_str(), &v) != 0)
      throw Error(fmt::format("--cap-drop: unknown capability {:?} (names as in "
                              "capabilities(7), e.g. sys_admin, net_raw; or all)", token));
    out.push_back(static_cast<int>(v));
  }
  return out;
}

}  // namespace chute::job
