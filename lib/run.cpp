#include "chute/run.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/fuse_server.hpp"
#include "chute/image.hpp"
#include "chute/job.hpp"
#include "chute/log.hpp"
#include "chute/mount.hpp"
#include "chute/path.hpp"
#include "chute/sys.hpp"
#include "chute/supervise.hpp"
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

// Before the job starts, look its command up as execvp(3) will and read its
// first page: the kernel then has the names, the attributes and (for a
// small program) the contents cached, and the image server has begun
// decompressing the rest; and a first getxattr(2) lets the kernel learn that
// the image has no extended attributes. All this while ch-run still runs on
// the server's CPU, where a FUSE round trip is several times cheaper than
// from another one.
void warm_command(const job::Spec& spec) {
  const std::string& cmd = spec.argv_store[0];
  std::vector<std::string> candidates;
  if (cmd.find('/') != std::string::npos) {
    candidates.push_back(path::is_absolute(cmd) || !spec.cwd ? cmd : path::join(*spec.cwd, cmd));
  } else if (auto p = spec.env.get("PATH")) {
    std::string_view path = *p;
    size_t i = 0;
    for (;;) {
      size_t j = path.find(':', i);
      std::string_view dir = path.substr(i, j == std::string_view::npos ? j : j - i);
      candidates.push_back(path::join(dir.empty() ? "." : dir, cmd));
      if (j == std::string_view::npos) break;
      i = j + 1;
    }
  }
  for (const auto& c : candidates) {
    int fd = ::open(c.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) continue;
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      // A small program is read whole; a big one's first read has the
      // server prefetch the rest.
      char page[16384];
      for (int i = 0; i < 4 && ::read(fd, page, sizeof page) == static_cast<ssize_t>(sizeof page); ++i) {
      }
      (void)::fgetxattr(fd, "security.capability", page, sizeof page);
      ::close(fd);
      return;
    }
    ::close(fd);
  }
}

}  // namespace


namespace {

// Everything after the image is attached: /etc/passwd and /etc/group, the
// binds, the pivot, the environment. Returns the job to execute.
job::Spec set_up(const Plan& plan, Fd root) {
  if (plan.passwd)
    mount::install_files(root.get(), "/dev",
                         {{"/etc/passwd", *plan.passwd}, {"/etc/group", *plan.group}});
  log::trace("stage: passwd installed");
  mount::apply(plan.mounts, root.get());
  log::trace("stage: mounts made");
  mount::pivot(root.get());
  root.reset();
  log::trace("stage: pivoted");

  job::Spec spec;
  spec.argv_store = plan.argv;
  spec.env = plan.host_env;
  spec.cwd = plan.cwd;
  spec.verbosity = plan.verbosity;
  env::fix(
      spec.env, plan.env, is_dir("/root") ? "/root" : "/",
      [] {
        auto f = sys::try_open("/ch/environment", O_RDONLY);
        if (!f) throw SysError(ENOENT, "--set-env: can't read /ch/environment in image");
        return sys::read_all(f->get(), "/ch/environment");
      },
      [](std::string_view w) { log::warn("{}", w); });
  job::finish(spec);
  if (log::level() >= log::kVerbose)
    for (const auto& a : spec.argv_store) log::verbose("argv: {:?}", a);
  return spec;
}

// A SquashFS image: this process serves it until the job and everything
// the job left behind have exited; a child mounts it in a mount namespace
// of its own, sets the container up and becomes the job.
[[noreturn]] void run_squash(const Plan& plan) {
  fuse::Server server(sys::open(plan.image.path, O_RDONLY), plan.image.path);
  log::trace("stage: image server made");
  supervise::block_signals();
  // Set-up is a string of FUSE requests between the child and the server:
  // on one CPU each is a wake-up rather than an interrupt to another CPU.
  const cpu_set_t cpus = supervise::pin_to_this_cpu();
  server.prepare();
  int code = supervise::run(
      [&] {
        log::trace("stage: job process started");
        if (::unshare(CLONE_NEWNS) != 0) {
          int e = errno;
          throw SysError(e, "can't create the job's mount namespace");
        }
        log::trace("stage: job mount namespace made");
        Fd root = image::attach_squash(server.dev_fd(), plan.image, plan.squash_mount,
                                       plan.write_fake, plan.ids,
                                       // Shared memory: wakes the serving thread.
                                       [&server] { server.start(); });
        log::trace("stage: image attached");
        job::Spec spec = set_up(plan, std::move(root));
        warm_command(spec);
        spec.set_mask = true;
        spec.mask = supervise::job_mask();
        spec.set_cpus = true;
        spec.cpus = cpus;
        job::throw_failure(spec, job::exec(spec));
      },
      server.stopped_fd(),
      [&] {
        supervise::restore_cpus(cpus);
        server.allow_growth();
      });
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);  // not exit(): the serving threads are still running
}

}  // namespace

void run(const Plan& plan) {
  log::trace("stage: plan made");
  // SquashFS: the launcher only serves the image; only the job's process
  // needs a mount namespace (it makes its own).
  const bool squash = plan.image.kind == ImageKind::kSquash;
  userns::enter(plan.ids, !squash);
  log::trace("stage: namespaces entered");
  if (squash) run_squash(plan);
  Fd root = image::attach_directory(plan.image, plan.writable, plan.write_fake);
  log::trace("stage: image attached");
  job::Spec spec = set_up(plan, std::move(root));
  // A directory: the job replaces the launcher.
  job::throw_failure(spec, job::exec(spec));
}

}  // namespace chute
