// Thin wrappers over system calls that throw SysError naming the object.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <span>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chute/fd.hpp"

namespace chute::sys {

// open(2) with O_CLOEXEC added; throws "can't open: PATH".
Fd open(const std::string& path, int flags, mode_t mode = 0);
// As open(), but ENOENT and ENOTDIR give nullopt.
std::optional<Fd> try_open(const std::string& path, int flags, mode_t mode = 0);

std::optional<struct stat> try_stat(const std::string& path);
std::optional<struct stat> try_lstat(const std::string& path);
struct stat fstat(int fd, std::string_view name);

// Everything readable from FD, or its first MAX bytes when there is more
// (a caller that gets MAX bytes knows there may be more: the size of input
// that may never end, such as /dev/zero or a pipe, is for it to bound); NAME
// is used in errors.
std::string read_all(int fd, std::string_view name, size_t max = SIZE_MAX);
std::string read_file(const std::string& path, size_t max = SIZE_MAX);
// PATH's contents if they are at most MAX bytes, else nothing: reading
// stops just past MAX, so a file that never ends (/dev/zero, a pipe that is
// never closed) is read no further. Throws SysError if it can't be read.
std::optional<std::string> read_file_within(const std::string& path, size_t max);
void write_all(int fd, std::string_view data, std::string_view name);
// Open PATH for writing (no create, no truncate) and write DATA in one call,
// as the kernel's /proc and /sys files want.
void write_file(const std::string& path, std::string_view data);

// "/proc/self/fd/N": names the object FD refers to, for calls that take paths.
std::string fd_path(int fd);

// The mount a descriptor lives on (statx STATX_MNT_ID, else fdinfo).
unsigned long long mount_id(int fd);

// PATH made absolute with no symlinks, "." or ".." (realpath(3)), or nullopt
// if it does not resolve.
std::optional<std::string> try_canonical(const std::string& path);

// The names in directory FD, without "." and "..", in no particular
// order; NAME is used in errors.
std::vector<std::string> list_dir(int fd, std::string_view name);

// One message on socket S with up to two descriptors (SCM_RIGHTS), retried
// on EINTR, without SIGPIPE. True if all of TEXT went.
bool send_message(int s, std::string_view text, std::span<const int> fds = {});

// One message of at most MAX bytes into TEXT, and the descriptors that came
// with it (close-on-exec) into FDS, or closed when FDS is null. Returns the
// byte count: 0 at end of file, -1 on error (errno set).
ssize_t receive_message(int s, size_t max, std::string& text, std::vector<Fd>* fds);

// Run program ARGV[0] (an absolute path) with ARGV, stdin from /dev/null and
// only PATH in its environment, and return its exit status (128+N when
// killed by signal N; 127 when it could not be executed) and what it wrote
// to stdout and stderr together. If ROOTFD >= 0 the child chroot(2)s into
// that directory first (it must be allowed to: in chute's namespace).
struct Output {
  int status = 0;
  std::string text;
};
Output run_capture(const std::vector<std::string>& argv, int rootfd = -1);

// Current working directory, or "" if it cannot be read.
std::string getcwd_or_empty();

}  // namespace chute::sys
