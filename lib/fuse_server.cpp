#define FUSE_USE_VERSION 312
#include "chute/fuse_server.hpp"

#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/core.h>
#include <vector>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/sys.hpp"

namespace chute::fuse {

namespace {

// The image never changes while mounted: let the kernel cache names and
// attributes for as long as it likes.
constexpr double kForever = 86400.0 * 365;

// Up to this much is read per request (the kernel asks for at most
// max_pages * 4 KiB; libfuse's default buffer holds 128 KiB plus headers).
constexpr size_t kMaxRead = 1 << 17;

Server& server(fuse_req_t req) { return *static_cast<Server*>(fuse_req_userdata(req)); }

// One reader per serving thread: libsquashfuse's caches are not thread-safe.
thread_local std::unique_ptr<squash::Reader> tl_reader;
thread_local std::vector<char> tl_buf;

squash::Reader* reader(fuse_req_t req) {
  if (!tl_reader) tl_reader = std::make_unique<squash::Reader>(server(req).image_fd(), "image");
  if (!tl_reader->ok()) {
    fuse_reply_err(req, EIO);
    return nullptr;
  }
  return tl_reader.get();
}

// FUSE node ids: the root is FUSE_ROOT_ID; every other inode is its
// SquashFS inode id (48 bits: metadata block and offset) plus 2. Stateless,
// so every thread agrees and "forget" has nothing to do.
fuse_ino_t to_ino(const Server& s, squash::InodeId id) {
  return id == s.root_id() ? FUSE_ROOT_ID : static_cast<fuse_ino_t>(id + 2);
}
squash::InodeId to_id(const Server& s, fuse_ino_t ino) {
  return ino == FUSE_ROOT_ID ? s.root_id() : static_cast<squash::InodeId>(ino - 2);
}

void op_init(void* userdata, struct fuse_conn_info* conn) {
  auto* s = static_cast<Server*>(userdata);
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_CACHE_SYMLINKS);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_NO_OPEN_SUPPORT);
  want(FUSE_CAP_NO_OPENDIR_SUPPORT);
  s->no_open = (conn->want & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
  s->no_opendir = (conn->want & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;  // always: ls -l and find need the attributes
  // Several reads in flight at once: the kernel's readahead of one file keeps
  // several threads decompressing in parallel.
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

// A lookup answer, cached by the kernel for as long as it likes.
struct fuse_entry_param entry(fuse_ino_t ino, const struct stat& st) {
  struct fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = ino;
  e.attr = st;
  e.attr_timeout = kForever;
  e.entry_timeout = kForever;
  return e;
}

// getxattr/listxattr answer: the size when asked for it (SIZE 0), else
// the data if it fits.
void reply_xattr(fuse_req_t req, const std::string& data, size_t size) {
  if (size == 0) return (void)fuse_reply_xattr(req, data.size());
  if (size < data.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, data.data(), data.size());
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Server& s = server(req);
  auto* r = reader(req);
  if (r == nullptr) return;
  squash::InodeId id = 0;
  struct stat st;
  std::memset(&st, 0, sizeof st);
  int err = r->lookup(to_id(s, parent), name, id, st);
  s.own(st);
  if (err != 0 && err != ENOENT) return (void)fuse_reply_err(req, err);
  // ENOENT: ino 0, a cached negative entry.
  struct fuse_entry_param e = entry(err == ENOENT ? 0 : to_ino(s, id), st);
  fuse_reply_entry(req, &e);
}

void op_forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
void op_forget_multi(fuse_req_t req, size_t, struct fuse_forget_data*) { fuse_reply_none(req); }

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info*) {
  auto* r = reader(req);
  if (r == nullptr) return;
  struct stat st;
  if (int err = r->stat(to_id(server(req), ino), st); err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  server(req).own(st);
  fuse_reply_attr(req, &st, kForever);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  auto* r = reader(req);
  if (r == nullptr) return;
  std::string target;
  if (int err = r->readlink(to_id(server(req), ino), target); err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_readlink(req, target.c_str());
}

// Where the kernel can do without them, open and opendir answer ENOSYS:
// it then stops sending them (and the matching release), and keeps the
// pages and directory contents it has cached, which is what keep_cache and
// cache_readdir would ask for. Two round trips saved per file opened, two
// per directory listed.
void op_open(fuse_req_t req, fuse_ino_t, struct fuse_file_info* fi) {
  if (server(req).no_open) return (void)fuse_reply_err(req, ENOSYS);
  if ((fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EROFS);
    return;
  }
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long a serving thread keeps looking for the next request before it
// sleeps.
constexpr std::chrono::microseconds kSpin{50};

// The block cache's size, and the largest file prefetched whole on its
// first read (programs and libraries, whose page faults come one at a time).
constexpr size_t kCacheBytes = 1536u << 10;
constexpr uint64_t kPrefetchMax = 1536ull << 10;

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info*) {
  auto* r = reader(req);
  if (r == nullptr) return;
  Server& s = server(req);
  squash::InodeId id = to_id(s, ino);
  struct stat st;
  if (int err = r->stat(id, st); err != 0) return (void)fuse_reply_err(req, err);
  if (!S_ISREG(st.st_mode)) return (void)fuse_reply_err(req, EISDIR);
  const uint64_t fsize = static_cast<uint64_t>(st.st_size);
  if (off == 0 && fsize <= kPrefetchMax && fsize > size) s.prefetch(id, fsize);
  if (size > kMaxRead * 2) size = kMaxRead * 2;  // the kernel asks for less
  if (tl_buf.size() < size) tl_buf.resize(size);
  size_t got = 0;
  if (int err = s.read(*r, id, fsize, static_cast<uint64_t>(off), size, tl_buf.data(), got);
      err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_buf(req, tl_buf.data(), got);
}

void op_opendir(fuse_req_t req, fuse_ino_t, struct fuse_file_info* fi) {
  if (server(req).no_opendir) return (void)fuse_reply_err(req, ENOSYS);
  fi->keep_cache = 1;
  fi->cache_readdir = 1;
  fuse_reply_open(req, fi);
}

// Offsets: 1 is ".", 2 is "..", and an entry whose SquashFS offset-after is
// N has offset N + 3; a request at offset K >= 3 resumes at SquashFS offset
// K - 3, at 2 from the first entry.
void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  Server& s = server(req);
  auto* r = reader(req);
  if (r == nullptr) return;
  if (tl_buf.size() < size) tl_buf.resize(size);
  char* buf = tl_buf.data();
  size_t used = 0;
  squash::InodeId dir = to_id(s, ino);
  bool full = false;

  auto add = [&](const char* name, fuse_ino_t child, const struct stat& st, off_t next) {
    size_t need;
    if (plus) {
      struct fuse_entry_param e = entry(child, st);
      need = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, next);
    } else {
      need = fuse_add_direntry(req, buf + used, size - used, name, &st, next);
    }
    if (need > size - used) {
      full = true;
      return false;
    }
    used += need;
    return true;
  };

  struct stat dot;
  if (off < 2 && r->stat(dir, dot) != 0) return (void)fuse_reply_err(req, EIO);
  dot.st_mode = S_IFDIR;  // (a nonzero inode number, or readdir(3) hides the entry)
  // "." and ".." carry no attributes (ino 0 in readdirplus): the kernel
  // resolves them itself.
  if (off < 1 && !add(".", 0, dot, 1)) return (void)fuse_reply_buf(req, buf, used);
  if (off < 2 && !add("..", 0, dot, 2)) return (void)fuse_reply_buf(req, buf, used);
  int err = r->readdir(dir, off >= 3 ? off - 3 : 0,
                       [&](std::string_view n, squash::InodeId id, mode_t mode, off_t next) {
                         struct stat st;
                         std::memset(&st, 0, sizeof st);
                         if (plus) {
                           if (r->stat(id, st) != 0) return false;
                           s.own(st);
                         } else {
                           st.st_mode = mode;
                         }
                         std::string name(n);
                         return add(name.c_str(), plus ? to_ino(s, id) : 0, st, next + 3);
                       });
  if (err != 0 && used == 0 && !full) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_buf(req, buf, used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info*) {
  readdir_common(req, ino, size, off, false);
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info*) {
  readdir_common(req, ino, size, off, true);
}

// Without extended attributes in the image, ENOSYS: the kernel then stops
// asking, which saves a round trip on every exec and every ls -l.
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  if (!server(req).has_xattrs()) return (void)fuse_reply_err(req, ENOSYS);
  auto* r = reader(req);
  if (r == nullptr) return;
  std::string names;
  if (int err = r->listxattr(to_id(server(req), ino), names); err != 0)
    return (void)fuse_reply_err(req, err);
  reply_xattr(req, names, size);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (!server(req).has_xattrs()) return (void)fuse_reply_err(req, ENOSYS);
  auto* r = reader(req);
  if (r == nullptr) return;
  std::string value;
  if (int err = r->getxattr(to_id(server(req), ino), name, value); err != 0)
    return (void)fuse_reply_err(req, err);
  reply_xattr(req, value, size);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  auto* r = reader(req);
  if (r == nullptr) return;
  struct statvfs sv;
  r->statfs(sv);
  fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops kOps = [] {
  struct fuse_lowlevel_ops o;
  std::memset(&o, 0, sizeof o);
  o.init = op_init;
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.forget_multi = op_forget_multi;
  o.getattr = op_getattr;
  o.readlink = op_readlink;
  o.open = op_open;
  o.read = op_read;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.readdirplus = op_readdirplus;
  o.listxattr = op_listxattr;
  o.getxattr = op_getxattr;
  o.statfs = op_statfs;
  // Anything that would change the image: "read-only file system", as the
  // kernel answers for a read-only mount (a job with -u 0 may remount the
  // mount read-write, and then these requests reach the server).
  o.setattr = [](fuse_req_t req, fuse_ino_t, struct stat*, int, struct fuse_file_info*) { fuse_reply_err(req, EROFS); };
  o.mknod = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EROFS); };
  o.mkdir = [](fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EROFS); };
  o.unlink = [](fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); };
  o.rmdir = [](fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); };
  o.symlink = [](fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); };
  o.rename = [](fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned int) {
    fuse_reply_err(req, EROFS);
  };
  o.link = [](fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); };
  o.write = [](fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, struct fuse_file_info*) {
    fuse_reply_err(req, EROFS);
  };
  o.create = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, struct fuse_file_info*) {
    fuse_reply_err(req, EROFS);
  };
  o.setxattr = [](fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
    fuse_reply_err(req, EROFS);
  };
  o.removexattr = [](fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); };
  return o;
}();

// libfuse's own messages ("reading device: ...", at every normal end of a
// connection) go to chute's log, at debug level.
void fuse_log_to_chute(enum fuse_log_level, const char* f, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, f, ap);
  std::string_view msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  log::debug("libfuse: {}", msg);
}

}  // namespace

unsigned default_threads() {
  cpu_set_t set;
  unsigned n = 2;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) n = static_cast<unsigned>(CPU_COUNT(&set));
  return std::clamp(n, 2u, 8u);
}

Server::Server(Fd image_fd, std::string image_name)
    : image_(std::move(image_fd)), name_(std::move(image_name)) {
  squash::Reader r(image_.get(), name_);
  if (!r.ok()) throw Error(fmt::format("invalid SquashFS image: {}: can't read its tables", name_));
  root_id_ = r.root();
  has_xattrs_ = r.has_xattrs();
  struct statvfs sv;
  r.statfs(sv);
  block_size_ = static_cast<uint32_t>(sv.f_bsize);
  max_threads_ = default_threads();  // (before the set-up pins this process to one CPU)
  uid_ = ::geteuid();
  gid_ = ::getegid();
  fuse_set_log_func(fuse_log_to_chute);
  // One malloc arena for all the serving threads, not one each: a few
  // threads allocating little don't need their own, and each costs memory.
  ::mallopt(M_ARENA_MAX, 1);
  // Decompressed blocks (up to 1 MiB each) come and go: give them their own
  // mappings, returned to the system when freed, rather than let them
  // fragment the heap (which glibc would do once its threshold adapts).
  ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  Fd dev = sys::open("/dev/fuse", O_RDWR);
  const char* argv[] = {"chute", nullptr};
  struct fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
  se_ = fuse_session_new(&args, &kOps, sizeof kOps, this);
  if (se_ == nullptr) throw Error("can't create FUSE session");
  // "/dev/fd/N": libfuse takes a descriptor someone else mounts.
  std::string fdname = fmt::format("/dev/fd/{}", dev.get());
  if (fuse_session_mount(se_, fdname.c_str()) != 0)
    throw Error(fmt::format("can't attach FUSE session to {}", fdname));
  ::fcntl(dev.get(), F_SETFL, ::fcntl(dev.get(), F_GETFL) | O_NONBLOCK);
  dev_fd_ = dev.release();
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    int e = errno;
    throw SysError(e, "can't create pipe");
  }
  stopped_[0].reset(p[0]);
  stopped_[1].reset(p[1]);
  if (::pipe2(p, O_CLOEXEC) != 0) {
    int e = errno;
    throw SysError(e, "can't create pipe");
  }
  go_[0].reset(p[0]);
  go_[1].reset(p[1]);
}

Server::~Server() {
  // The process exits while serving: the threads go with it. Only a server
  // that never started is taken apart here.
  if (workers_.empty() && se_ != nullptr) fuse_session_destroy(se_);
  for (auto& w : workers_) w.detach();
  for (auto& h : helpers_) h.detach();
}

void mount(int fd, const std::string& name, const std::string& dir, uid_t uid, gid_t gid) {
  std::string opts = fmt::format("fd={},rootmode=40000,user_id={},group_id={},default_permissions",
                                 fd, uid, gid);
  log::verbose("SquashFS: mounting {} on {} (FUSE, in the container's namespace)", name, dir);
  if (::mount("chute-squash", dir.c_str(), "fuse.chute", MS_NOSUID | MS_NODEV | MS_RDONLY,
              opts.c_str()) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't mount SquashFS image {} on {}", name, dir));
  }
}

Server::Block* Server::fill(std::unique_lock<std::mutex>& lock, squash::Reader& r,
                            squash::InodeId id, uint64_t file_size, uint64_t k, int& err) {
  const Key key{id, k};
  for (;;) {
    auto it = blocks_.find(key);
    if (it == blocks_.end()) break;
    if (it->second.ready) {
      lru_.splice(lru_.end(), lru_, it->second.lru);  // most recently used
      return &it->second;
    }
    cache_cv_.wait(lock);  // another thread is decompressing it
  }
  auto [it, inserted] = blocks_.try_emplace(key);
  it->second.lru = lru_.insert(lru_.end(), key);
  const uint64_t start = k * block_size_;
  const size_t len = static_cast<size_t>(std::min<uint64_t>(block_size_, file_size - start));
  std::vector<char> data(len);
  lock.unlock();
  size_t got = 0;
  int e = r.read(id, static_cast<off_t>(start), len, data.data(), got);
  lock.lock();
  it = blocks_.find(key);
  if (e != 0 || got != len) {
    lru_.erase(it->second.lru);
    blocks_.erase(it);
    cache_cv_.notify_all();
    err = e != 0 ? e : EIO;
    return nullptr;
  }
  it->second.data = std::move(data);
  it->second.ready = true;
  cache_bytes_ += len;
  while (cache_bytes_ > kCacheBytes && lru_.size() > 1) {
    auto old = blocks_.find(lru_.front());
    if (old == it || !old->second.ready) break;
    cache_bytes_ -= old->second.data.size();
    lru_.pop_front();
    blocks_.erase(old);
  }
  cache_cv_.notify_all();
  return &it->second;
}

int Server::read(squash::Reader& r, squash::InodeId id, uint64_t file_size, uint64_t off,
                 size_t size, char* buf, size_t& got) {
  got = 0;
  if (off >= file_size) return 0;
  size = static_cast<size_t>(std::min<uint64_t>(size, file_size - off));
  std::unique_lock<std::mutex> lock(cache_mu_);
  while (got < size) {
    uint64_t pos = off + got;
    uint64_t k = pos / block_size_;
    int err = 0;
    Block* b = fill(lock, r, id, file_size, k, err);
    if (b == nullptr) return got > 0 ? 0 : err;
    size_t in = static_cast<size_t>(pos - k * block_size_);
    size_t n = std::min(size - got, b->data.size() - in);
    std::memcpy(buf + got, b->data.data() + in, n);
    got += n;
  }
  return 0;
}

void Server::prefetch(squash::InodeId id, uint64_t file_size) {
  {
    std::lock_guard<std::mutex> lock(threads_mu_);
    // One CPU's worth fewer helpers than serving threads: a worker
    // decompresses too, when the block it needs is not ready.
    while (helpers_.size() < std::max(1u, max_threads_ - 1)) helpers_.emplace_back([this] { helper(); });
  }
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (!seen_.insert(id).second) return;
    for (uint64_t k = 0; k * block_size_ < file_size; ++k) queue_.push_back({id, file_size, k});
  }
  queue_cv_.notify_all();
}

void Server::helper() {
  for (;;) {
    Job j;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return !queue_.empty(); });
      j = queue_.front();
      queue_.pop_front();
    }
    if (!tl_reader) tl_reader = std::make_unique<squash::Reader>(image_.get(), name_);
    if (!tl_reader->ok()) continue;
    std::unique_lock<std::mutex> lock(cache_mu_);
    int err = 0;
    fill(lock, *tl_reader, j.id, j.file_size, j.block, err);  // errors: read again later
  }
}

// libfuse's own multithreaded loop starts its threads one by one as
// requests arrive, on the path of those requests; these workers are started
// when chute chooses. Each reads requests from the shared /dev/fuse
// descriptor and answers them.
void Server::worker() {
  // Ready before the first request: this thread's reader, and (for the
  // first worker, made before the mount exists) the go from start():
  // /dev/fuse can't be read until the mount is made.
  tl_reader = std::make_unique<squash::Reader>(image_.get(), name_);
  {
    struct pollfd go = {go_[0].get(), POLLIN, 0};
    while (::poll(&go, 1, -1) < 0 && errno == EINTR) {
    }
  }
  struct fuse_buf buf;
  std::memset(&buf, 0, sizeof buf);
  int rc = 0;
  // After answering, look for the next request without sleeping for a
  // short while: requests come in bursts (a directory walk, a program's
  // page faults), and each sleep costs a wake-up, often an interrupt to
  // another CPU. The descriptor is non-blocking; poll(2) sleeps when idle.
  using clock = std::chrono::steady_clock;
  auto last = clock::now();
  while (!fuse_session_exited(se_)) {
    rc = fuse_session_receive_buf(se_, &buf);
    if (rc == -EINTR) continue;
    if (rc == -EAGAIN) {
      // Not while the set-up runs on this same CPU: the thread would keep
      // the CPU from the process it waits for.
      if (may_grow_.load(std::memory_order_relaxed) && clock::now() - last < kSpin) {
        cpu_relax();
        continue;
      }
      struct pollfd p = {dev_fd_, POLLIN, 0};
      ::poll(&p, 1, -1);
      last = clock::now();
      continue;
    }
    if (rc <= 0) break;
    // Busy: if no other worker is waiting for requests, make one (after
    // answering this one), up to the limit. A job that never asks for two
    // things at once never pays for a second thread.
    bool was_last = idle_workers_.fetch_sub(1) == 1;
    fuse_session_process_buf(se_, &buf);
    idle_workers_.fetch_add(1);
    if (was_last && may_grow_.load(std::memory_order_relaxed)) add_worker();
    last = clock::now();
  }
  std::free(buf.mem);
  if (live_workers_.fetch_sub(1) == 1) {
    char c = rc < 0 ? 1 : 0;
    (void)!::write(stopped_[1].get(), &c, 1);
  }
}

void Server::add_worker() {
  std::lock_guard<std::mutex> lock(threads_mu_);
  if (workers_.size() >= max_threads_) return;
  live_workers_.fetch_add(1);
  idle_workers_.fetch_add(1);
  workers_.emplace_back([this] { worker(); });
}

void Server::prepare() { add_worker(); }

void Server::start() { (void)!::write(go_[1].get(), "", 1); }

}  // namespace chute::fuse
