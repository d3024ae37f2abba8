#include "chute/run.hpp"

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/image.hpp"
#include "chute/log.hpp"
#include "chute/mount.hpp"
#include "chute/sys.hpp"
#include "chute/userns.hpp"

extern char** environ;

namespace chute {

void refuse_setuid(std::string_view program) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  ::getresuid(&ruid, &euid, &suid);
  ::getresgid(&rgid, &egid, &sgid);
  if (::getauxval(AT_SECURE) != 0 || ruid != euid || ruid != suid || rgid != egid ||
      rgid != sgid)
    throw Error(fmt::format(
        "{} is running setuid, setgid or with file capabilities (uid {}/{}, gid {}/{}); it needs "
        "no privileges and refuses to run with them: an administrator should remove them "
        "(chmod u-s,g-s; setcap -r)",
        program, ruid, euid, rgid, egid));
}

namespace {

bool is_dir(const char* p) {
  struct stat st;
  return ::stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

void redirect_to_null(int fd) {
  int n = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (n < 0) {
    int e = errno;
    throw SysError(e, "can't open /dev/null");
  }
  ::dup2(n, fd);
  ::close(n);
}

}  // namespace

void exec_job(const std::vector<std::string>& argv, Environment& env,
              const std::optional<std::string>& cwd, int verbosity) {
  if (cwd && ::chdir(cwd->c_str()) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't cd to {}", *cwd));
  }
  // Nothing the job executes can gain privileges (setuid files, file caps).
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    int e = errno;
    throw SysError(e, "can't set no_new_privs");
  }
  // With -qqq the job's stderr goes to /dev/null, but an exec failure must
  // still be reported: keep the real stderr, closed by a successful exec.
  int saved_stderr = -1;
  if (verbosity <= log::kQuiet1) redirect_to_null(STDOUT_FILENO);
  if (verbosity <= log::kQuiet3) {
    saved_stderr = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    redirect_to_null(STDERR_FILENO);
  }

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp = env.envp();
  if (log::level() >= log::kVerbose) {
    for (const auto& a : argv) log::verbose("argv: {:?}", a);
  }
  // execvp(3) searches the PATH of environ, which must be the job's.
  environ = envp.data();
  ::execvp(args[0], args.data());
  int e = errno;
  if (saved_stderr >= 0) ::dup2(saved_stderr, STDERR_FILENO);
  throw SysError(e, fmt::format("can't execve(2): {}", argv[0]), kExitExec);
}

void run(const Plan& plan) {
  log::trace("stage: plan made");
  userns::enter(plan.ids);
  log::trace("stage: namespaces entered");
  Fd root = image::attach(plan.image, plan.writable);
  log::trace("stage: image attached");
  if (plan.passwd)
    mount::install_files(root.get(), "/dev",
                         {{"/etc/passwd", *plan.passwd}, {"/etc/group", *plan.group}});
  log::trace("stage: passwd installed");
  mount::apply(plan.mounts, root.get());
  log::trace("stage: mounts made");
  mount::pivot(root.get());
  root.reset();
  log::trace("stage: pivoted");

  Environment env = plan.host_env;
  env::fix(
      env, plan.env, is_dir("/root") ? "/root" : "/",
      [] {
        auto f = sys::try_open("/ch/environment", O_RDONLY);
        if (!f) throw SysError(ENOENT, "--set-env: can't read /ch/environment in image");
        return sys::read_all(f->get(), "/ch/environment");
      },
      [](std::string_view w) { log::warn("{}", w); });
  exec_job(plan.argv, env, plan.cwd, plan.verbosity);
}

}  // namespace chute
