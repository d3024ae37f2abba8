#include "chute/sys.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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

std::string read_all(int fd, std::string_view name, size_t max) {
  std::string out;
  char buf[8192];
  while (out.size() < max) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max - out.size()));
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

std::string read_file(const std::string& path, size_t max) {
  Fd fd = open(path, O_RDONLY);
  return read_all(fd.get(), path, max);
}

std::optional<std::string> read_file_within(const std::string& path, size_t max) {
  std::string text = read_file(path, max == SIZE_MAX ? max : max + 1);
  if (text.size() > max) return std::nullopt;
  return text;
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

bool send_message(int s, std::string_view text, std::span<const int> fds) {
  constexpr size_t kMaxFds = 2;
  if (fds.size() > kMaxFds) {
    errno = EINVAL;
    return false;
  }
  struct iovec iov = {const_cast<char*>(text.data()), text.size()};
  alignas(struct cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
  struct msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(s, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(text.size());
}

ssize_t receive_message(int s, size_t max, std::string& text, std::vector<Fd>* fds) {
  text.assign(max, '\0');
  struct iovec iov = {text.data(), text.size()};
  alignas(struct cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
  struct msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  const int saved = errno;
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (fds != nullptr)
        fds->emplace_back(fd);
      else
        ::close(fd);
    }
  }
  errno = saved;
  return n;
}

Output run_capture(const std::vector<std::string>& argv, int rootfd) {
  if (argv.empty()) throw Error("run_capture: no program");
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't run {}: pipe", argv[0]));
  }
  Fd rd(p[0]), wr(p[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char path_var[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {path_var, nullptr};
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't run {}: fork", argv[0]));
  }
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::dup2(wr.get(), STDOUT_FILENO);
    ::dup2(wr.get(), STDERR_FILENO);
    // The image's program gains nothing from setuid bits or file capabilities.
    if (rootfd >= 0 && (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::fchdir(rootfd) != 0 ||
                        ::chroot(".") != 0 || ::chdir("/") != 0)) {
      const char m[] = "can't chroot into the image\n";
      [[maybe_unused]] auto n = ::write(STDERR_FILENO, m, sizeof m - 1);
      ::_exit(127);
    }
    ::execve(args[0], args.data(), envp);
    const char m[] = "can't execute\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, m, sizeof m - 1);
    ::_exit(127);
  }
  wr.reset();
  Output out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n > 0) {
      if (out.text.size() < (16u << 20)) out.text.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  out.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return out;
}

}  // namespace chute::sys
