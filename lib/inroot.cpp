#include "chute/inroot.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <deque>
#include <fmt/core.h>
#include <vector>

#include "chute/error.hpp"
#include "chute/path.hpp"
#include "chute/sys.hpp"

namespace chute::inroot {

namespace {

constexpr int kMaxLinks = 40;  // as the kernel's own limit

// Result of one attempt: a descriptor, or the errno that stopped it.
struct Opened {
  Fd fd;
  int err = 0;
};

bool g_no_openat2 = false;  // set once the kernel says ENOSYS

Opened open_openat2(int rootfd, std::string_view path, int flags) {
  struct open_how how {};
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string p(path.empty() ? "." : path);
  int fd = static_cast<int>(::syscall(SYS_openat2, rootfd, p.c_str(), &how, sizeof how));
  if (fd < 0) return {Fd(), errno};
  return {Fd(fd), 0};
}

// Reopen an O_PATH descriptor with the caller's flags.
Opened reopen(Fd fd, int flags) {
  if ((flags & O_PATH) != 0) return {std::move(fd), 0};
  int f = ::openat(fd.get(), ".", (flags & ~O_NOFOLLOW) | O_CLOEXEC);
  if (f < 0 && (errno == ENOTDIR)) {
    // Not a directory: reopen the object itself through its fd link.
    if ((flags & O_DIRECTORY) != 0) return {Fd(), ENOTDIR};
    f = ::open(sys::fd_path(fd.get()).c_str(), (flags & ~O_NOFOLLOW) | O_CLOEXEC);
  }
  if (f < 0) return {Fd(), errno};
  return {Fd(f), 0};
}

Opened open_walk(int rootfd, std::string_view path, int flags) {
  const bool follow_last = (flags & O_NOFOLLOW) == 0;
  std::vector<Fd> stack;
  int r = ::openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (r < 0) return {Fd(), errno};
  stack.emplace_back(r);
  auto comps = path::components(path);
  std::deque<std::string> todo(comps.begin(), comps.end());
  int links = 0;
  while (!todo.empty()) {
    std::string comp = std::move(todo.front());
    todo.pop_front();
    if (comp == "..") {
      if (stack.size() > 1) stack.pop_back();  // ".." at the root stays there
      continue;
    }
    int n = ::openat(stack.back().get(), comp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (n < 0) return {Fd(), errno};
    Fd next(n);
    struct stat st;
    if (::fstat(next.get(), &st) != 0) return {Fd(), errno};
    if (S_ISLNK(st.st_mode) && (!todo.empty() || follow_last)) {
      if (++links > kMaxLinks) return {Fd(), ELOOP};
      char buf[PATH_MAX];
      ssize_t len = ::readlinkat(next.get(), "", buf, sizeof buf - 1);
      if (len < 0) return {Fd(), errno};
      std::string_view target(buf, static_cast<size_t>(len));
      auto tc = path::components(target);
      todo.insert(todo.begin(), tc.begin(), tc.end());
      if (path::is_absolute(target)) stack.resize(1);
      continue;
    }
    if (!todo.empty() && !S_ISDIR(st.st_mode)) return {Fd(), ENOTDIR};
    stack.push_back(std::move(next));
  }
  Fd last = std::move(stack.back());
  if ((flags & O_DIRECTORY) != 0) {
    struct stat st;
    if (::fstat(last.get(), &st) != 0) return {Fd(), errno};
    if (!S_ISDIR(st.st_mode)) return {Fd(), ENOTDIR};
  }
  return reopen(std::move(last), flags);
}

Opened open_any(int rootfd, std::string_view path, int flags) {
  if (!g_no_openat2) {
    Opened o = open_openat2(rootfd, path, flags);
    if (o.err != ENOSYS) return o;
    g_no_openat2 = true;
  }
  return open_walk(rootfd, path, flags);
}

[[noreturn]] void fail(int err, std::string_view what, std::string_view path) {
  throw SysError(err, fmt::format("{}: {:?} (inside the image)", what, path));
}

}  // namespace

Fd open(int rootfd, std::string_view path, int flags) {
  Opened o = open_any(rootfd, path, flags);
  if (o.err != 0) fail(o.err, "can't open", path);
  return std::move(o.fd);
}

std::optional<Fd> try_open(int rootfd, std::string_view path, int flags) {
  Opened o = open_any(rootfd, path, flags);
  if (o.err == ENOENT) return std::nullopt;
  if (o.err != 0) fail(o.err, "can't open", path);
  return std::move(o.fd);
}

std::optional<Fd> try_open_walk(int rootfd, std::string_view path, int flags) {
  Opened o = open_walk(rootfd, path, flags);
  if (o.err == ENOENT) return std::nullopt;
  if (o.err != 0) fail(o.err, "can't open", path);
  return std::move(o.fd);
}

namespace {

bool may_create_on(int rootfd, int dirfd, std::span<const unsigned long long> also) {
  unsigned long long m = sys::mount_id(dirfd);
  if (m == sys::mount_id(rootfd)) return true;
  for (auto a : also)
    if (a == m) return true;
  return false;
}

}  // namespace

Fd mkdirs(int rootfd, std::string_view path, mode_t mode,
          std::span<const unsigned long long> also) {
  if (path::has_dotdot(path))
    throw Error(fmt::format("can't create {:?}: path contains \"..\"", path));
  std::string todo(path);
  int links = 0;
restart:
  auto comps = path::components(todo);
  Fd cur = open(rootfd, "/", O_PATH | O_DIRECTORY);
  std::string so_far;
  for (size_t i = 0; i < comps.size(); ++i) {
    const std::string& comp = comps[i];
    std::string parent = so_far.empty() ? "/" : so_far;
    so_far += "/" + comp;
    if (auto d = try_open(rootfd, so_far, O_PATH | O_DIRECTORY)) {
      cur = std::move(*d);
      continue;
    }
    // Missing: create it, but only on the image's own file system.
    if (!may_create_on(rootfd, cur.get(), also))
      throw Error(fmt::format("can't create {:?}: its parent is under a bind mount, "
                              "not part of the image", so_far));
    if (::mkdirat(cur.get(), comp.c_str(), mode) != 0) {
      int e = errno;
      if (e != EEXIST)
        throw SysError(e, fmt::format("can't create directory {:?} (inside the image)", so_far));
      // A dangling symlink: create its target instead, resolved inside the
      // image like any other path.
      char buf[PATH_MAX];
      ssize_t len = ::readlinkat(cur.get(), comp.c_str(), buf, sizeof buf - 1);
      if (len < 0)
        throw SysError(e, fmt::format("can't create {:?}: a non-directory is in the way", so_far));
      if (++links > kMaxLinks) throw SysError(ELOOP, fmt::format("can't create {:?}", path));
      std::string_view target(buf, static_cast<size_t>(len));
      std::string next = path::is_absolute(target) ? std::string(target)
                                                   : path::join(parent, target);
      for (size_t j = i + 1; j < comps.size(); ++j) next = path::join(next, comps[j]);
      todo = std::move(next);
      goto restart;
    }
    int n = ::openat(cur.get(), comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (n < 0) {
      int e = errno;
      fail(e, "can't open new directory", so_far);
    }
    cur = Fd(n);
  }
  return cur;
}

Fd make_file(int rootfd, std::string_view path, mode_t mode,
             std::span<const unsigned long long> also) {
  if (auto f = try_open(rootfd, path, O_PATH)) return std::move(*f);
  Fd dir = mkdirs(rootfd, path::parent(path), 0755, also);
  if (!may_create_on(rootfd, dir.get(), also))
    throw Error(fmt::format("can't create {:?}: its parent is under a bind mount, "
                            "not part of the image", path));
  std::string name = path::leaf(path);
  int f = ::openat(dir.get(), name.c_str(),
                   O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, mode);
  if (f < 0) {
    int e = errno;
    if (e == EEXIST)
      throw SysError(e, fmt::format("can't create {:?}: a symlink or other object is in "
                                    "the way", path));
    fail(e, "can't create file", path);
  }
  ::close(f);
  return open(rootfd, path, O_PATH | O_NOFOLLOW);
}

}  // namespace chute::inroot
