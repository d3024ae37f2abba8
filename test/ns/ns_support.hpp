// Helpers shared by the namespace tests.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/mount.h>

#include <algorithm>
#include <climits>
#include <sstream>
#include <vector>
#include <functional>
#include <string>

namespace ns_support {

extern std::string host_userns;  // /proc/self/ns/user before entering

inline std::string readlink_or_empty(const std::string& p) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

inline std::string read_text(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<missing>";
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// A temporary directory, removed (with whatever is in it) at scope exit.
class TempDir {
public:
  TempDir() {
    char tmpl[] = "/tmp/chute-ns-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    // Unmount what the test mounted under the directory first, deepest
    // first: rm -rf would otherwise delete through bind mounts.
    std::vector<std::string> points;
    std::istringstream info(read_text("/proc/self/mountinfo"));
    std::string line;
    while (std::getline(info, line)) {
      std::istringstream f(line);
      std::string id, parent, dev, root, point;
      f >> id >> parent >> dev >> root >> point;
      if (point.rfind(path_ + "/", 0) == 0 || point == path_) points.push_back(point);
    }
    std::sort(points.begin(), points.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const auto& p : points) ::umount2(p.c_str(), MNT_DETACH);
    std::string cmd = "chmod -R u+rwx '" + path_ + "' 2>/dev/null; rm -rf '" + path_ + "'";
    (void)!::system(cmd.c_str());
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

private:
  std::string path_;
};

inline void write_text(const std::string& p, const std::string& text) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    (void)!::write(fd, text.data(), text.size());
    ::close(fd);
  }
}

inline bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// Run FN in a child process (for what can't be undone: pivot_root, nested
// namespaces) and return its exit status, or 128+signal.
inline int in_child(const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 100;
    try {
      rc = fn();
    } catch (...) {
      rc = 101;
    }
    ::_exit(rc);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace ns_support
