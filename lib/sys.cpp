#include "chute/sys.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <fmt/core.h>

#include "chute/error.hpp"

namespace chute::sys {

Fd open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't open: {}", path));
  }
  return Fd(fd);
}

std::optional<Fd> try_open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) return std::nullopt;
    throw SysError(e, fmt::format("can't open: {}", path));
  }
  return Fd(fd);
}

std::optional<struct stat> try_stat(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

std::optional<struct stat> try_lstat(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

struct stat fstat(int fd, std::string_view name) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't stat: {}", name));
  }
  return st;
}

std::string read_all(int fd, std::string_view name) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      if (e == EINTR) continue;
      throw SysError(e, fmt::format("can't read: {}", name));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string read_file(const std::string& path) {
  Fd fd = open(path, O_RDONLY);
  return read_all(fd.get(), path);
}

void write_all(int fd, std::string_view data, std::string_view name) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      int e = errno;
      if (e == EINTR) continue;
      throw SysError(e, fmt::format("can't write: {}", name));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void write_file(const std::string& path, std::string_view data) {
  Fd fd = open(path, O_WRONLY);
  write_all(fd.get(), data, path);
}

std::string fd_path(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

unsigned long long mount_id(int fd) {
#ifdef STATX_MNT_ID
  struct statx sx;
  if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) == 0 &&
      (sx.stx_mask & STATX_MNT_ID))
    return sx.stx_mnt_id;
#endif
  // Kernels before 5.8: the "mnt_id:" line of fdinfo (3.15+).
  std::string info = read_file(fmt::format("/proc/self/fdinfo/{}", fd));
  auto at = info.find("mnt_id:");
  if (at == std::string::npos)
    throw Error(fmt::format("can't find mnt_id in /proc/self/fdinfo/{}", fd));
  at += 7;
  while (at < info.size() && (info[at] == ' ' || info[at] == '\t')) ++at;
  unsigned long long id = 0;
  std::from_chars(info.data() + at, info.data() + info.size(), id);
  return id;
}

std::optional<std::string> try_canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

std::vector<std::string> list_dir(int fd, std::string_view name) {
  // (fdopendir takes over the descriptor it is given: give it a copy.)
  DIR* d = ::fdopendir(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!d) throw SysError(errno, fmt::format("can't list {}", name));
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  return names;
}

std::string getcwd_or_empty() {
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof buf) == nullptr) return {};
  return buf;
}

}  // namespace chute::sys
