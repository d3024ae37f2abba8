#include "chute/checkns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fmt/core.h>
#include <functional>
#include <optional>

#include "chute/error.hpp"
#include "chute/idmap.hpp"
#include "chute/seccomp.hpp"
#include "chute/sys.hpp"
#include "chute/userns.hpp"

namespace chute::checkns {

namespace {

using Status = Result::Status;

std::optional<long long> read_number(const std::string& path) {
  auto f = sys::try_open(path, O_RDONLY);
  if (!f) return std::nullopt;
  try {
    std::string s = sys::read_all(f->get(), path);
    long long v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Run STEP in a child; it returns a detail string on success and throws on
// failure. The outcome comes back through a pipe.
Result in_child(std::string name, bool required, const std::function<std::string()>& step) {
  Result r;
  r.name = std::move(name);
  r.required = required;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.status = Status::kFail;
    r.detail = fmt::format("can't create pipe: {}", std::strerror(errno));
    return r;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    r.status = Status::kFail;
    r.detail = fmt::format("can't fork: {}", std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return r;
  }
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg;
    int code = 0;
    try {
      msg = step();
    } catch (const std::exception& e) {
      msg = describe(e);
      code = 1;
    }
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string msg;
  try {
    msg = sys::read_all(fds[0], "pipe");
  } catch (const std::exception&) {
  }
  ::close(fds[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  r.status = ok ? Status::kOk : (required ? Status::kFail : Status::kWarn);
  r.detail = msg.empty() && !ok ? "child failed" : msg;
  return r;
}

IdMap self_map() {
  IdMap m;
  m.host_uid = m.container_uid = ::geteuid();
  m.host_gid = m.container_gid = ::getegid();
  return m;
}

// A private tmpfs to work in, inside the current mount namespace.
std::string scratch() {
  const char* dir = "/tmp";
  struct stat st;
  if (::stat(dir, &st) != 0) dir = "/";
  if (::mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't mount tmpfs on {}", dir));
  }
  return dir;
}

void mkdir_or_throw(const std::string& p) {
  if (::mkdir(p.c_str(), 0755) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't mkdir {}", p));
  }
}

Result sysctls() {
  Result r;
  r.name = "user namespace sysctls";
  std::vector<std::string> seen;
  if (auto v = read_number("/proc/sys/kernel/unprivileged_userns_clone")) {
    seen.push_back(fmt::format("kernel.unprivileged_userns_clone={}", *v));
    if (*v == 0) {
      r.status = Status::kFail;
      r.detail = "kernel.unprivileged_userns_clone=0: unprivileged user namespaces are off "
                 "(fix: sysctl -w kernel.unprivileged_userns_clone=1)";
      return r;
    }
  }
  if (auto v = read_number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")) {
    seen.push_back(fmt::format("kernel.apparmor_restrict_unprivileged_userns={}", *v));
    if (*v != 0) {
      r.status = Status::kWarn;
      r.detail = "kernel.apparmor_restrict_unprivileged_userns=1: AppArmor denies capabilities in "
                 "new user namespaces unless ch-run has a profile allowing \"userns\" "
                 "(fix: an AppArmor profile for ch-run, or sysctl -w "
                 "kernel.apparmor_restrict_unprivileged_userns=0)";
    }
  }
  if (auto v = read_number("/proc/sys/user/max_user_namespaces")) {
    seen.push_back(fmt::format("user.max_user_namespaces={}", *v));
    if (*v == 0) {
      r.status = Status::kFail;
      r.detail = "user.max_user_namespaces=0: no user namespaces may be created "
                 "(fix: sysctl -w user.max_user_namespaces=15000 or more)";
      return r;
    }
    if (*v < 1024 && r.status == Status::kOk) {
      r.status = Status::kWarn;
      r.detail = fmt::format("user.max_user_namespaces={}: little headroom; each running "
                             "ch-run uses one (fix: sysctl -w "
                             "user.max_user_namespaces=15000 or more)", *v);
    }
  }
  if (r.detail.empty()) r.detail = seen.empty() ? "none found" : fmt::format("{}", fmt::join(seen, ", "));
  return r;
}

}  // namespace

std::vector<Result> run_all(const std::string& dev_fuse) {
  std::vector<Result> out;
  struct utsname u {};
  ::uname(&u);
  out.push_back({Status::kOk, "kernel", fmt::format("{} {} {}", u.sysname, u.release, u.machine),
                 false});
  out.push_back(sysctls());

  out.push_back(in_child("user namespace", true, [] {
    userns::enter(self_map());
    return fmt::format("uid {} and gid {} mapped", ::geteuid(), ::getegid());
  }));

  out.push_back(in_child("mount namespace", true, [] {
    userns::enter(self_map());
    std::string s = scratch();
    return fmt::format("private tmpfs mounted on {}", s);
  }));

  out.push_back(in_child("pivot_root", true, [] {
    userns::enter(self_map());
    std::string s = scratch();
    std::string root = s + "/newroot";
    mkdir_or_throw(root);
    if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      int e = errno;
      throw SysError(e, "can't bind new root onto itself");
    }
    if (::chdir(root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0) {
      int e = errno;
      throw SysError(e, "can't pivot_root(2)");
    }
    if (::umount2(".", MNT_DETACH) != 0) {
      int e = errno;
      throw SysError(e, "can't detach old root");
    }
    return std::string("pivot_root into a bind mount works");
  }));

  out.push_back(in_child("/dev/fuse (for SquashFS images)", false, [dev_fuse] {
    // The device must be opened inside the namespace that mounts it.
    userns::enter(self_map());
    int fd = ::open(dev_fuse.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      throw SysError(e, e == EACCES ? fmt::format("can't open {} (fix: chmod 0666 {}, as on "
                                                  "most HPC nodes)", dev_fuse, dev_fuse)
                                    : fmt::format("can't open {}", dev_fuse));
    }
    std::string s = scratch();
    std::string mnt = s + "/fuse";
    mkdir_or_throw(mnt);
    std::string opts = fmt::format("fd={},rootmode=40000,user_id={},group_id={}", fd,
                                   ::geteuid(), ::getegid());
    if (::mount("chute-check", mnt.c_str(), "fuse", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      int e = errno;
      throw SysError(e, "can't mount FUSE in a user namespace");
    }
    ::umount2(mnt.c_str(), MNT_DETACH);
    return fmt::format("{} opens, FUSE mounts in a user namespace", dev_fuse);
  }));

  out.push_back(in_child("overlayfs in a user namespace (for --write-fake)", false, [] {
    userns::enter(self_map());
    std::string s = scratch();
    for (const char* d : {"/lower", "/upper", "/work", "/merged"}) mkdir_or_throw(s + d);
    std::string opts = fmt::format("lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work,userxattr", s);
    if (::mount("overlay", (s + "/merged").c_str(), "overlay", 0, opts.c_str()) != 0) {
      int e = errno;
      throw SysError(e, "can't mount overlayfs (needs Linux 5.11+)");
    }
    return std::string("works");
  }));

  // It forks a child of its own.
  const auto why = seccomp::self_test();
  out.push_back({why ? Status::kWarn : Status::kOk,
                 "seccomp filters (for --seccomp, --seccomp-deny)",
                 why ? *why : "root emulation fakes chown, set*id, mknod of devices; the deny "
                              "list refuses",
                 false});
  return out;
}

std::string format(const Result& r) {
  const char* tag = r.status == Status::kOk ? "ok  " : r.status == Status::kWarn ? "WARN" : "FAIL";
  return fmt::format("{} {}: {}", tag, r.name, r.detail);
}

}  // namespace chute::checkns
