#include "chute/mount.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/inroot.hpp"
#include "chute/log.hpp"
#include "chute/path.hpp"
#include "chute/sys.hpp"

namespace chute::mount {

namespace {

// Kernels without the new mount API (before 5.2 / 5.12) answer ENOSYS; a
// seccomp profile of an enclosing container may answer EPERM.
bool api_missing(int e) { return e == ENOSYS || e == EPERM; }

Fd reopen_in_root(int rootfd, std::string_view dst) {
  return inroot::open(rootfd, dst, O_PATH);
}

bool fd_is_dir(int fd, std::string_view name) { return S_ISDIR(sys::fstat(fd, name).st_mode); }

}  // namespace

Fd bind_self(const std::string& path) {
  if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't bind image onto itself: {}", path));
  }
  return sys::open(path, O_PATH | O_DIRECTORY);
}

void make_unbindable(const std::string& path) {
  if (::mount(nullptr, path.c_str(), nullptr, MS_UNBINDABLE, nullptr) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't make the image mount unbindable: {}", path));
  }
}

void remount_readonly(int fd, std::string_view name) {
  struct statvfs sv;
  if (::fstatvfs(fd, &sv) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't statvfs: {}", name));
  }
  // In a user namespace the kernel locks these flags on mounts inherited from
  // the host: a remount must repeat them or it fails with EPERM.
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  if (!(sv.f_flag & (ST_NOATIME | ST_RELATIME))) flags |= MS_STRICTATIME;
  if (::mount(nullptr, sys::fd_path(fd).c_str(), nullptr, flags, nullptr) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't remount read-only: {}", name));
  }
}

void make_readonly(int fd, std::string_view name, bool recursive) {
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  if (::mount_setattr(fd, "", flags, &attr, sizeof attr) == 0) return;
  int e = errno;
  if (!api_missing(e)) throw SysError(e, fmt::format("can't make read-only: {}", name));
  if (recursive) log::debug("no mount_setattr(2): only the top mount of {} is read-only", name);
  remount_readonly(fd, name);
}

namespace {

void mount_tmpfs(const Mount& m, int rootfd, std::vector<unsigned long long>& scratch) {
  auto target = inroot::try_open(rootfd, m.dst, O_PATH | O_DIRECTORY);
  if (!target)
    throw SysError(ENOENT, fmt::format("can't mount tmpfs for {}: image has no {}", m.why, m.dst));
  log::verbose("tmpfs: {} ({})", m.dst, m.why);
  if (::mount("tmpfs", sys::fd_path(target->get()).c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              m.src.c_str()) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't mount tmpfs on {} for {}", m.dst, m.why));
  }
  Fd top = reopen_in_root(rootfd, m.dst);
  scratch.push_back(sys::mount_id(top.get()));
}

// A procfs of this process's PID namespace. The kernel allows it in a user
// namespace only where a procfs is already fully visible in the mount
// namespace (the host's /proc, not partly covered) and only with its
// read-only and atime flags: they are repeated.
void mount_proc(const Mount& m, int rootfd) {
  auto target = inroot::try_open(rootfd, m.dst, O_PATH | O_DIRECTORY);
  if (!target)
    throw SysError(ENOENT, fmt::format("can't mount /proc for {}: image has no {}", m.why, m.dst));
  unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  struct statvfs sv;
  if (::statvfs("/proc", &sv) == 0) {
    if (sv.f_flag & ST_RDONLY) flags |= MS_RDONLY;
    if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (!(sv.f_flag & (ST_NOATIME | ST_RELATIME))) flags |= MS_STRICTATIME;
  }
  log::verbose("proc: {} ({})", m.dst, m.why);
  if (::mount("proc", sys::fd_path(target->get()).c_str(), "proc", flags, nullptr) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("{}: can't mount a /proc of the new PID namespace on {} (the "
                                  "kernel allows it only where the host's /proc is fully visible)",
                                  m.why, m.dst));
  }
}

}  // namespace

Fd cover(int rootfd, const std::string& dir, const CoverOptions& opts) {
  Fd old = inroot::open(rootfd, dir, O_RDONLY | O_DIRECTORY);
  const struct stat st = sys::fstat(old.get(), dir);
  const auto names = sys::list_dir(old.get(), dir);
  constexpr size_t kMaxEntries = 4096;
  if (names.size() > kMaxEntries)
    throw Error(fmt::format("can't cover {}: more than {} entries to show", dir, kMaxEntries));
  struct Entry {
    std::string name;
    Fd fd;
    struct stat st;
  };
  std::vector<Entry> entries;
  for (const auto& name : names) {
    if (std::find(opts.hide.begin(), opts.hide.end(), name) != opts.hide.end()) continue;
    int fd = ::openat(old.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    Entry e{name, Fd(fd), {}};
    e.st = sys::fstat(fd, name);
    entries.push_back(std::move(e));
  }
  log::verbose("cover: tmpfs on {} ({} entries shown, {} hidden)", dir, entries.size(),
               names.size() - entries.size());
  const std::string mopts = fmt::format("mode={:o},size={}", st.st_mode & 07777, opts.size);
  if (::mount("tmpfs", sys::fd_path(old.get()).c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              mopts.c_str()) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't mount a tmpfs on {}", dir));
  }
  // OLD still shows the directory that was there; this is the tmpfs on it.
  Fd top = inroot::open(rootfd, dir, O_RDONLY | O_DIRECTORY);
  // The image's mount is unbindable (see make_unbindable()): its entries
  // can be bound only while it is not.
  const std::string root_path = sys::fd_path(rootfd);
  auto propagation = [&](unsigned long type) {
    if (::mount(nullptr, root_path.c_str(), nullptr, type, nullptr) != 0) {
      int err = errno;
      throw SysError(err, fmt::format("can't change the image mount's propagation to cover {}",
                                      dir));
    }
  };
  propagation(MS_PRIVATE);
  for (const auto& e : entries) {
    const char* n = e.name.c_str();
    if (S_ISLNK(e.st.st_mode)) {
      std::string buf(PATH_MAX, '\0');
      ssize_t len = ::readlinkat(e.fd.get(), "", buf.data(), buf.size());
      if (len < 0 || ::symlinkat(buf.substr(0, static_cast<size_t>(len)).c_str(), top.get(), n) != 0) {
        int err = errno;
        throw SysError(err, fmt::format("can't copy symlink {}/{} onto the cover", dir, e.name));
      }
      continue;
    }
    int made = S_ISDIR(e.st.st_mode) ? ::mkdirat(top.get(), n, 0755)
                                     : ::mknodat(top.get(), n, S_IFREG | 0644, 0);
    if (made != 0) {
      int err = errno;
      throw SysError(err, fmt::format("can't create {}/{} on the cover", dir, e.name));
    }
    Fd spot(::openat(top.get(), n, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!spot || ::mount(sys::fd_path(e.fd.get()).c_str(), sys::fd_path(spot.get()).c_str(),
                         nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      int err = errno;
      throw SysError(err, fmt::format("can't show {}/{} on the cover", dir, e.name));
    }
    // What is shown is still the image: a later cover may cover it too.
    if (opts.views) {
      Fd shown(::openat(top.get(), n, O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (shown) opts.views->push_back(sys::mount_id(shown.get()));
    }
  }
  propagation(MS_UNBINDABLE);
  return top;
}

namespace {

// Make the missing DST of M appear in a read-only image: cover its nearest
// existing ancestor (never the image's root) with a small tmpfs that shows
// what the ancestor held, each entry bound from the image (symlinks
// copied), and on which DST can be created. Nothing of the image changes,
// and the cover is made read-only again once DST exists.
Fd cover_and_create(const Mount& m, int rootfd, std::vector<unsigned long long>& scratch,
                    std::vector<unsigned long long>& views) {
  std::string anc = path::parent(m.dst);
  while (anc != "/" && !inroot::try_open(rootfd, anc, O_PATH | O_DIRECTORY))
    anc = path::parent(anc);
  if (anc == "/")
    throw SysError(EROFS, fmt::format("can't create bind destination {} for {}: the image is "
                                      "read-only and has no {}", m.dst, m.why,
                                      path::join("/", m.dst.substr(1, m.dst.find('/', 1) - 1))));
  {
    // Only the image's own directories are covered (on its mount, on a tmpfs
    // ch-run made, or shown by an earlier cover): never a bind of host files.
    Fd old = inroot::open(rootfd, anc, O_PATH | O_DIRECTORY);
    const unsigned long long at = sys::mount_id(old.get());
    if (at != sys::mount_id(rootfd) && std::find(scratch.begin(), scratch.end(), at) == scratch.end() &&
        std::find(views.begin(), views.end(), at) == views.end())
      throw Error(fmt::format("can't create bind destination {} for {}: {} is a bind of host "
                              "files", m.dst, m.why, anc));
  }
  log::verbose("cover: {} to create {} for {}", anc, m.dst, m.why);
  CoverOptions opts;
  opts.views = &views;
  Fd top;
  try {
    top = cover(rootfd, anc, opts);
  } catch (const Error& e) {
    throw Error(fmt::format("can't create bind destination {} for {}: {}", m.dst, m.why, e.what()));
  }
  scratch.push_back(sys::mount_id(top.get()));
  Fd made = m.src_is_dir ? inroot::mkdirs(rootfd, m.dst, 0755, scratch)
                         : inroot::make_file(rootfd, m.dst, 0644, scratch);
  make_readonly(top.get(), anc, false);
  return made;
}

// The destination of a bind, created when the plan allows it. SCRATCH:
// tmpfs mounts ch-run made; VIEWS: image directories shown by covers.
std::optional<Fd> bind_target(const Mount& m, int rootfd,
                              std::vector<unsigned long long>& scratch,
                              std::vector<unsigned long long>& views) {
  if (auto t = inroot::try_open(rootfd, m.dst, O_PATH)) return t;
  switch (m.need) {
    case Mount::Need::kOptional:
      log::debug("{}: image has no {}: skipped", m.why, m.dst);
      return std::nullopt;
    case Mount::Need::kRequired:
      throw SysError(ENOENT, fmt::format("can't bind {}: image has no {}", m.src, m.dst));
    case Mount::Need::kMakeDst:
      break;
    case Mount::Need::kCreateDst:
      // Wanted, not required: a job that needs it fails on its own terms.
      try {
        try {
          return m.src_is_dir ? inroot::mkdirs(rootfd, m.dst, 0755, scratch)
                              : inroot::make_file(rootfd, m.dst, 0644, scratch);
        } catch (const std::exception&) {
          // Read-only, or below a directory an earlier cover shows.
          return cover_and_create(m, rootfd, scratch, views);
        }
      } catch (const std::exception& c) {
        if (m.why == "default bind")
          log::verbose("{}: skipped: {}", m.dst, c.what());
        else
          log::warn("{}: skipped: {}", m.why, c.what());
        return std::nullopt;
      }
  }
  try {
    return m.src_is_dir ? inroot::mkdirs(rootfd, m.dst, 0755, scratch)
                        : inroot::make_file(rootfd, m.dst, 0644, scratch);
  } catch (const SysError& e) {
    if (e.err() == EROFS)
      throw SysError(EROFS, fmt::format("can't create bind destination {}: the image is "
                                        "read-only (create it in the image, or use -w or -W)", m.dst));
    throw;
  }
}

void bind_one(const Mount& m, int rootfd, std::vector<unsigned long long>& scratch,
              std::vector<unsigned long long>& views) {
  auto target = bind_target(m, rootfd, scratch, views);
  if (!target) return;
  log::verbose("bind: {} -> {}{} ({})", m.src, m.dst, m.readonly ? " read-only" : "", m.why);
  if (::mount(m.src.c_str(), sys::fd_path(target->get()).c_str(), nullptr, MS_BIND | MS_REC,
              nullptr) != 0) {
    int e = errno;
    if ((e == ENOTDIR || e == EISDIR) &&
        (m.need == Mount::Need::kOptional || m.need == Mount::Need::kCreateDst)) {
      log::warn("{}: {} and {} are not both directories: skipped", m.why, m.src, m.dst);
      return;
    }
    if (e == ENOTDIR || e == EISDIR)
      throw SysError(e, fmt::format("can't bind {} to {}: one is a directory, the other is not",
                                    m.src, m.dst));
    throw SysError(e, fmt::format("can't bind {} to {}", m.src, m.dst));
  }
  if (m.readonly) {
    Fd top = reopen_in_root(rootfd, m.dst);
    make_readonly(top.get(), m.dst, true);
  }
}

}  // namespace

void apply(const std::vector<Mount>& mounts, int rootfd) {
  std::vector<unsigned long long> scratch;  // tmpfs made here: destinations may be created on them
  std::vector<unsigned long long> views;    // image directories shown by covers: may be covered
  for (const auto& m : mounts) {
    if (m.kind == Mount::Kind::kTmpfs)
      mount_tmpfs(m, rootfd, scratch);
    else if (m.kind == Mount::Kind::kProc)
      mount_proc(m, rootfd);
    else
      bind_one(m, rootfd, scratch, views);
  }
}

void install_files(int rootfd, const std::string& scratch_dir,
                   const std::vector<std::pair<std::string, std::string>>& files) {
  // The files live on a small ramfs mounted on SCRATCH_DIR (the image's /dev),
  // which the /dev bind then covers: the job can't see it, nothing gets a
  // name on the host, and it goes away with the namespace without an unmount.
  // ramfs, not tmpfs: cheaper to create, and nothing can write to it.
  auto dir = inroot::try_open(rootfd, scratch_dir, O_PATH | O_DIRECTORY);
  if (!dir) throw SysError(ENOENT, fmt::format("can't bind /dev: image has no {}", scratch_dir));
  if (::mount("ramfs", sys::fd_path(dir->get()).c_str(), "ramfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0700") != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't mount scratch file system on {}", scratch_dir));
  }
  Fd scratch = inroot::open(rootfd, scratch_dir, O_PATH | O_DIRECTORY);
  std::vector<std::pair<Fd, Fd>> binds;  // (contents, target)
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& [dst, text] = files[i];
    auto target = inroot::try_open(rootfd, dst, O_PATH);
    if (!target) {
      log::warn("image has no {}: not replaced", dst);
      continue;
    }
    if (fd_is_dir(target->get(), dst)) throw SysError(EISDIR, fmt::format("can't bind over {}", dst));
    std::string name = fmt::format("f{}", i);
    int f = ::openat(scratch.get(), name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0444);
    if (f < 0) {
      int e = errno;
      throw SysError(e, fmt::format("can't create contents of {}", dst));
    }
    {
      Fd writing(f);
      sys::write_all(f, text, dst);
    }  // closed: a file open for writing would keep the mount from turning read-only
    int p = ::openat(scratch.get(), name.c_str(), O_PATH | O_CLOEXEC);
    if (p < 0) {
      int e = errno;
      throw SysError(e, fmt::format("can't reopen contents of {}", dst));
    }
    log::verbose("synthesized: {}", dst);
    binds.emplace_back(Fd(p), std::move(*target));
  }
  // Read-only before binding: the binds inherit it.
  make_readonly(scratch.get(), scratch_dir, false);
  for (const auto& [file, target] : binds) {
    if (::mount(sys::fd_path(file.get()).c_str(), sys::fd_path(target.get()).c_str(), nullptr,
                MS_BIND, nullptr) != 0) {
      int e = errno;
      throw SysError(e, "can't bind synthesized file over /etc/passwd or /etc/group");
    }
  }
}

Fd overlay(int rootfd, const std::string& root_path, const std::string& size) {
  auto dev = inroot::try_open(rootfd, "/dev", O_PATH | O_DIRECTORY);
  if (!dev) throw SysError(ENOENT, "--write-fake: image has no /dev");
  std::string opts = fmt::format("size={},mode=0700", size);
  if (::mount("tmpfs", sys::fd_path(dev->get()).c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              opts.c_str()) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("--write-fake: can't mount tmpfs of size {}", size));
  }
  Fd scratch = inroot::open(rootfd, "/dev", O_PATH | O_DIRECTORY);
  for (const char* d : {"upper", "work"}) {
    if (::mkdirat(scratch.get(), d, 0755) != 0) {
      int e = errno;
      throw SysError(e, fmt::format("--write-fake: can't create overlay {} directory", d));
    }
  }
  // userxattr: the overlay's own bookkeeping in user.* attributes, as an
  // unprivileged mount must (Linux 5.11+).
  std::string ovl = fmt::format("lowerdir={0},upperdir={1}/upper,workdir={1}/work,userxattr",
                                sys::fd_path(rootfd), sys::fd_path(scratch.get()));
  log::verbose("--write-fake: overlay on a tmpfs of size {}", size);
  if (::mount("overlay", sys::fd_path(rootfd).c_str(), "overlay", 0, ovl.c_str()) != 0) {
    int e = errno;
    throw SysError(e, e == EINVAL || e == EPERM
                          ? "--write-fake: can't mount overlayfs (needs Linux 5.11 or later)"
                          : "--write-fake: can't mount overlayfs");
  }
  return sys::open(root_path, O_PATH | O_DIRECTORY);
}

void pivot(int rootfd) {
  if (::fchdir(rootfd) != 0) {
    int e = errno;
    throw SysError(e, "can't chdir into new root");
  }
  // new_root and put_old may be the same directory: the old root ends up
  // stacked under the new one, and is detached right away.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) {
    int e = errno;
    throw SysError(e, "can't pivot_root(2) into image");
  }
  if (::umount2(".", MNT_DETACH) != 0) {
    int e = errno;
    throw SysError(e, "can't detach host root");
  }
  if (::chdir("/") != 0) {
    int e = errno;
    throw SysError(e, "can't chdir to /");
  }
}

}  // namespace chute::mount
