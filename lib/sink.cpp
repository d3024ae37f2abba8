#include "chute/sink.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/path.hpp"
#include "chute/sys.hpp"

namespace chute::sink {

mode_t& output_umask() {
  static mode_t m = 022;
  return m;
}

std::string temp_pattern(const std::string& out) {
  std::string dir = path::parent(out);
  std::string base = path::leaf(out);
  return fmt::format("{}/.{}.ch-convert-XXXXXX", dir, base);
}

namespace {

void remove_at(int dirfd, const char* name) {
  if (::unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR) throw SysError(errno, fmt::format("can't remove {:?}", name));
  // A directory: make sure we may list and change it, then empty it.
  ::fchmodat(dirfd, name, 0700, 0);
  Fd fd(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throw SysError(errno, fmt::format("can't open {:?}", name));
  for (const auto& n : sys::list_dir(fd.get(), fmt::format("{:?}", name))) remove_at(fd.get(), n.c_str());
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
    throw SysError(errno, fmt::format("can't remove directory {:?}", name));
}

}  // namespace

void remove_tree(const std::string& path) {
  const std::string dir = path::parent(path);
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) {
    if (errno == ENOENT) return;
    throw SysError(errno, fmt::format("can't open {}", dir));
  }
  remove_at(d.get(), path::leaf(path).c_str());
}

void put_in_place(const std::string& tmp, const std::string& out) {
  if (::syscall(SYS_renameat2, AT_FDCWD, tmp.c_str(), AT_FDCWD, out.c_str(), RENAME_NOREPLACE) == 0)
    return;
  if (errno != EEXIST) throw SysError(errno, fmt::format("can't rename {} to {}", tmp, out));
  // Swap, then remove the old one (now at the temporary name).
  if (::syscall(SYS_renameat2, AT_FDCWD, tmp.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) != 0)
    throw SysError(errno, fmt::format("can't replace {}", out));
  remove_tree(tmp);
}

}  // namespace chute::sink
