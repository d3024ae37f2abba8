// Serving a SquashFS image over FUSE from the launcher: libfuse3's low-level
// API on a /dev/fuse descriptor opened by chute itself (no fusermount3). The
// mount is made by the child that becomes the job, in a mount namespace of
// its own: the serving process never has the mount in its namespace, nor
// uses it, so it can die at any moment (SIGKILL) without waiting on itself.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chute/fd.hpp"
#include "chute/squash.hpp"

struct fuse_session;

namespace chute::fuse {

class Server {
public:
  // IMAGE_FD: the image, open read-only (checked with squash::check_fd).
  // Opens /dev/fuse: call inside the user namespace that will mount.
  Server(Fd image_fd, std::string image_name);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The /dev/fuse descriptor, for mount() in a child process.
  int dev_fd() const { return dev_fd_; }

  // Make the first serving thread, waiting for start(); more are made as
  // requests overlap, up to default_threads(), and as many prefetch helpers
  // on the first prefetch. Block the supervisor's signals first: the
  // threads inherit the mask.
  void prepare();

  // From now on, make more serving threads as requests overlap (not during
  // the set-up, which runs on one CPU and asks one thing at a time).
  void allow_growth() { may_grow_.store(true); }

  // Let it serve: call once the image is mounted (/dev/fuse can't be read
  // before). Allocates nothing. The child that mounts may share this
  // process's memory or be a copy of it (fork(2), as with ch-run --pid):
  // the word goes through a pipe.
  void start();


  // Readable (one byte) when serving has stopped.
  int stopped_fd() const { return stopped_[0].get(); }

  // Internals used by the FUSE callbacks.
  int image_fd() const { return image_.get(); }
  squash::InodeId root_id() const { return root_id_; }
  bool has_xattrs() const { return has_xattrs_; }
  // Every file is reported as the container user's, as in a directory
  // image the user unpacked: a root-owned image (ch-convert and mksquashfs
  // -all-root make them) would otherwise hide its 0600 and 0640 files from
  // the job, since the kernel checks permissions (default_permissions).
  void own(struct stat& st) const {
    st.st_uid = uid_;
    st.st_gid = gid_;
  }
  uint32_t block_size() const { return block_size_; }
  bool no_open = false;     // the kernel can do without open / opendir
  bool no_opendir = false;

  // Read [OFF, OFF+SIZE) of regular file ID (of SIZE bytes) through the
  // block cache, decompressing missing blocks with R. Returns 0 or an errno.
  int read(squash::Reader& r, squash::InodeId id, uint64_t file_size, uint64_t off, size_t size,
           char* buf, size_t& got);

  // The first read of a small file queues all its blocks to be decompressed
  // by helper threads, in parallel, into the block cache: a program's page
  // faults, which come one at a time, then find their data decompressed.
  void prefetch(squash::InodeId id, uint64_t file_size);

private:
  Fd image_;
  std::string name_;
  int dev_fd_ = -1;  // owned by the session
  squash::InodeId root_id_ = 0;
  bool has_xattrs_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  uint32_t block_size_ = 0;
  struct fuse_session* se_ = nullptr;
  std::mutex threads_mu_;
  unsigned max_threads_ = 2;
  std::vector<std::thread> workers_;
  std::atomic<int> idle_workers_{0};
  std::atomic<bool> may_grow_{false};
  void add_worker();
  Fd go_[2];  // start() writes one byte, never read: every worker sees it
  std::atomic<int> live_workers_{0};
  void worker();

  // Decompressed blocks, shared by all threads: a block is decompressed
  // once, even when the kernel's requests straddle block boundaries (they
  // usually do) or a helper is already on it. Least recently used blocks go
  // when the cache holds more than kCacheBytes.
  using Key = std::pair<squash::InodeId, uint64_t>;  // file, block index
  struct Block {
    std::vector<char> data;
    bool ready = false;
    int err = 0;
    std::list<Key>::iterator lru;
  };
  std::mutex cache_mu_;
  std::condition_variable cache_cv_;
  std::map<Key, Block> blocks_;
  std::list<Key> lru_;
  size_t cache_bytes_ = 0;
  // Make block K of file ID present (ready) in the cache; with R if this
  // thread has to decompress it. Call with LOCK held; it is released while
  // decompressing. Returns the block or nullptr with ERR set.
  Block* fill(std::unique_lock<std::mutex>& lock, squash::Reader& r, squash::InodeId id,
              uint64_t file_size, uint64_t k, int& err);

  struct Job {
    squash::InodeId id;
    uint64_t file_size;
    uint64_t block;
  };
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Job> queue_;
  std::unordered_set<squash::InodeId> seen_;
  std::vector<std::thread> helpers_;
  void helper();
  Fd stopped_[2];
};

// Mount the image served on /dev/fuse descriptor FD (opened in this user
// namespace) read-only on DIR, owned by UID/GID of the namespace. NAME is
// the image's, for messages.
void mount(int fd, const std::string& name, const std::string& dir, uid_t uid, gid_t gid);

// How many serving threads to allow: the CPUs this process may use, 2 to 8.
unsigned default_threads();

}  // namespace chute::fuse
