// Directory output: every member written relative to descriptors of
// directories chute created itself, one O_NOFOLLOW component at a time, so
// no symlink in the archive can send a write outside the output.

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/log.hpp"
#include "chute/sink.hpp"

namespace chute::sink {

namespace {

using member::Kind;
using member::Member;

class DirSink final : public Sink {
public:
  DirSink(std::string out, bool xattrs) : out_(std::move(out)), xattrs_(xattrs) {
    std::string pattern = temp_pattern(out_);
    if (!::mkdtemp(pattern.data())) throw SysError(errno, fmt::format("can't create a directory next to {}", out_));
    tmp_ = pattern;
    root_ = Fd(::open(tmp_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_) throw SysError(errno, fmt::format("can't open {}", tmp_));
    ::fchmod(root_.get(), (0755 & ~output_umask()) | S_IRWXU);
  }

  ~DirSink() override {
    if (committed_) return;
    stack_.clear();
    root_.reset();
    try {
      remove_tree(tmp_);
    } catch (const std::exception& e) {
      log::emit("warning", fmt::format("can't remove {}: {}", tmp_, e.what()));
    }
  }

  void add(const Member& m, Data* data) override {
    const std::string path = prefix_ + m.path;
    if (path.empty()) {  // the root itself
      if (::fchmod(root_.get(), m.perm) != 0) throw SysError(errno, fmt::format("{}: can't chmod the image root", out_));
      dir_times_.emplace_back(".", m.mtime);
      return;
    }
    const std::string parent = member::parent_of(path);
    const std::string base = member::base_of(path);
    if (m.kind == Kind::kHardlink) return add_hardlink(parent, path, base, m);
    const int pfd = walk(parent, true);
    switch (m.kind) {
      case Kind::kDir: add_dir(pfd, path, base, m); break;
      case Kind::kFile: add_file(pfd, path, base, m, data); break;
      case Kind::kSymlink: add_symlink(pfd, path, base, m); break;
      default: throw Error(fmt::format("a {} can't be written", member::kind_name(m.kind)));
    }
  }

  bool exists(const std::string& p) override {
    const std::string path = prefix_ + p;
    int pfd;
    try {
      pfd = walk(member::parent_of(path), false);
    } catch (const Error&) {
      return true;  // under a symlink or a file: never write there
    }
    if (pfd < 0) return false;
    struct stat st;
    return ::fstatat(pfd, member::base_of(path).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  }

  void set_root(const std::string& subdir) override {
    prefix_ = subdir + "/";
    stack_.clear();
  }

  void commit() override {
    // Directory times last, deepest first, once nothing changes them.
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
      struct timespec ts[2] = {{0, UTIME_OMIT}, {it->second, 0}};
      ::utimensat(root_.get(), it->first.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    }
    stack_.clear();
    root_.reset();
    if (prefix_.empty()) {
      put_in_place(tmp_, out_);
    } else {
      const std::string inner = tmp_ + "/" + prefix_.substr(0, prefix_.size() - 1);
      put_in_place(inner, out_);
      remove_tree(tmp_);
    }
    committed_ = true;
  }

  std::uint64_t bytes_written() const override { return written_; }

private:
  // A descriptor of directory PATH (relative to the output root), making
  // missing components when CREATE; -1 if missing and not CREATE.
  int walk(const std::string& path, bool create) {
    std::vector<std::string> comps;
    for (std::size_t i = 0; i < path.size();) {
      auto j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      comps.push_back(path.substr(i, j - i));
      i = j + 1;
    }
    std::size_t keep = 0;
    while (keep < comps.size() && keep < stack_.size() && stack_[keep].first == comps[keep]) ++keep;
    stack_.resize(keep);
    for (std::size_t k = keep; k < comps.size(); ++k) {
      const int at = k == 0 ? root_.get() : stack_[k - 1].second.get();
      const char* c = comps[k].c_str();
      Fd fd(::openat(at, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd && errno == ENOENT) {
        if (!create) return -1;
        if (::mkdirat(at, c, 0755) != 0 && errno != EEXIST)
          throw SysError(errno, fmt::format("{}: can't create directory {:?}", out_, joined(comps, k)));
        fd = Fd(::openat(at, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      }
      if (!fd) {
        if (errno == ELOOP || errno == ENOTDIR)
          throw Error(fmt::format("parent {:?} is not a directory (a symlink or a file): "
                                  "refusing to write through it",
                                  joined(comps, k)));
        throw SysError(errno, fmt::format("{}: can't open directory {:?}", out_, joined(comps, k)));
      }
      stack_.emplace_back(comps[k], std::move(fd));
    }
    return comps.empty() ? root_.get() : stack_.back().second.get();
  }

  std::string joined(const std::vector<std::string>& comps, std::size_t upto) const {
    std::string s;
    for (std::size_t i = 0; i <= upto; ++i) s += (i ? "/" : "") + comps[i];
    return s;
  }

  // Something is at BASE already: remove it if it is not a directory, so
  // the later member wins (as with tar); a directory is a conflict.
  void make_room(int pfd, const std::string& path, const std::string& base, const Member& m) {
    struct stat st;
    if (::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      throw SysError(errno, fmt::format("{}: can't stat {:?}", out_, path));
    if (S_ISDIR(st.st_mode))
      throw Error(fmt::format("a {} would replace a directory", member::kind_name(m.kind)));
    if (::unlinkat(pfd, base.c_str(), 0) != 0) throw SysError(errno, fmt::format("{}: can't replace {:?}", out_, path));
  }

  void add_dir(int pfd, const std::string& path, const std::string& base, const Member& m) {
    if (::mkdirat(pfd, base.c_str(), m.perm) != 0) {
      if (errno != EEXIST) throw SysError(errno, fmt::format("{}: can't create directory {:?}", out_, path));
      struct stat st;
      if (::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
        throw Error(fmt::format("a directory would replace a {}", S_ISLNK(st.st_mode) ? "symlink" : "file"));
      if (::fchmodat(pfd, base.c_str(), m.perm, 0) != 0)
        throw SysError(errno, fmt::format("{}: can't chmod {:?}", out_, path));
    }
    if (xattrs_ && !m.xattrs.empty()) {
      Fd fd(::openat(pfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (fd) set_xattrs(fd.get(), m);
    }
    dir_times_.emplace_back(path, m.mtime);
  }

  void add_file(int pfd, const std::string& path, const std::string& base, const Member& m, Data* data) {
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    Fd fd(::openat(pfd, base.c_str(), flags, m.perm));
    if (!fd && errno == EEXIST) {
      make_room(pfd, path, base, m);
      fd = Fd(::openat(pfd, base.c_str(), flags, m.perm));
    }
    if (!fd) throw SysError(errno, fmt::format("{}: can't create {:?}", out_, path));
    if (data) {
      for (auto b = data->next(); !b.empty(); b = data->next()) {
        const char* p = b.data();
        std::size_t left = b.size();
        while (left > 0) {
          const ssize_t w = ::write(fd.get(), p, left);
          if (w < 0) {
            if (errno == EINTR) continue;
            throw SysError(errno, fmt::format("{}: can't write {:?}", out_, path));
          }
          p += w;
          left -= static_cast<std::size_t>(w);
        }
        written_ += b.size();
      }
    }
    if (xattrs_ && !m.xattrs.empty()) set_xattrs(fd.get(), m);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {m.mtime, 0}};
    ::futimens(fd.get(), ts);
  }

  void add_symlink(int pfd, const std::string& path, const std::string& base, const Member& m) {
    if (::symlinkat(m.target.c_str(), pfd, base.c_str()) != 0) {
      if (errno != EEXIST) throw SysError(errno, fmt::format("{}: can't create symlink {:?}", out_, path));
      make_room(pfd, path, base, m);
      if (::symlinkat(m.target.c_str(), pfd, base.c_str()) != 0)
        throw SysError(errno, fmt::format("{}: can't create symlink {:?}", out_, path));
    }
    struct timespec ts[2] = {{0, UTIME_OMIT}, {m.mtime, 0}};
    ::utimensat(pfd, base.c_str(), ts, AT_SYMLINK_NOFOLLOW);
  }

  void add_hardlink(const std::string& parent, const std::string& path, const std::string& base,
                    const Member& m) {
    // The target's directory first: walking to it replaces the cached
    // descriptors, so the link's own directory is walked after.
    const std::string target = prefix_ + m.target;
    const std::string tbase = member::base_of(target);
    Fd tfd;
    {
      const int t = walk(member::parent_of(target), false);
      if (t < 0) throw Error(fmt::format("hard link to missing {:?}", m.target));
      tfd = Fd(::dup(t));
    }
    const int pfd = walk(parent, true);
    struct stat st;
    if (::fstatat(tfd.get(), tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      throw Error(fmt::format("hard link to missing {:?}", m.target));
    if (S_ISDIR(st.st_mode)) throw Error(fmt::format("hard link to directory {:?}", m.target));
    if (::linkat(tfd.get(), tbase.c_str(), pfd, base.c_str(), 0) != 0) {
      if (errno != EEXIST) throw SysError(errno, fmt::format("{}: can't link {:?} to {:?}", out_, path, m.target));
      struct stat cur;
      if (::fstatat(pfd, base.c_str(), &cur, AT_SYMLINK_NOFOLLOW) == 0 && cur.st_ino == st.st_ino &&
          cur.st_dev == st.st_dev)
        return;  // already the same file
      make_room(pfd, path, base, m);
      if (::linkat(tfd.get(), tbase.c_str(), pfd, base.c_str(), 0) != 0)
        throw SysError(errno, fmt::format("{}: can't link {:?} to {:?}", out_, path, m.target));
    }
  }

  void set_xattrs(int fd, const Member& m) {
    for (const auto& [k, v] : m.xattrs) {
      // An ordinary user can only set the "user." namespace.
      if (k.compare(0, 5, "user.") != 0) {
        log::verbose("{:?}: extended attribute {:?} not copied (not in the user namespace)", m.path, k);
        continue;
      }
      if (::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0) {
        if (!xattr_warned_)
          log::warn("can't set extended attribute {:?} on {:?}: {} (further failures not shown)", k,
                    m.path, std::strerror(errno));
        xattr_warned_ = true;
      }
    }
  }

  std::string out_;
  std::string tmp_;
  bool xattrs_;
  Fd root_;
  std::string prefix_;
  std::vector<std::pair<std::string, Fd>> stack_;
  std::vector<std::pair<std::string, std::int64_t>> dir_times_;
  std::uint64_t written_ = 0;
  bool committed_ = false;
  bool xattr_warned_ = false;
};

}  // namespace

std::unique_ptr<Sink> dir_sink(const std::string& out, bool xattrs) {
  return std::make_unique<DirSink>(out, xattrs);
}

}  // namespace chute::sink
