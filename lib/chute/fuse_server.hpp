// Serving a SquashFS image over FUSE from inside the launcher: libfuse3's
// low-level API on a /dev/fuse descriptor opened and mounted by chute itself
// (no fusermount3), in the container's private mount namespace.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
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

  // Mount the image read-only on DIR (a path in the current mount namespace),
  // owned by UID/GID of that namespace.
  void mount(const std::string& dir, uid_t uid, gid_t gid);

  // Serve with one thread (enough while the container is set up). Block the
  // supervisor's signals before calling: the threads inherit the mask.
  void start();

  // Serve with THREADS threads in all, and as many prefetch helpers: call
  // when the job is about to start.
  void grow(unsigned threads);

  // Readable (one byte) when serving has stopped.
  int stopped_fd() const { return stopped_[0].get(); }
  bool stopped() const { return stopped_flag_.load(); }

  // Internals used by the FUSE callbacks.
  int image_fd() const { return image_.get(); }
  squash::InodeId root_id() const { return root_id_; }
  bool has_xattrs() const { return has_xattrs_; }
  uint32_t block_size() const { return block_size_; }

  // The first read of a small file queues the whole file, block-aligned, to
  // be decompressed by helper threads in parallel and stored in the kernel's
  // page cache (FUSE notify_store): a program's page faults then find their
  // pages there instead of waiting, one decompression at a time, for reads.
  void prefetch(uint64_t ino, squash::InodeId id, uint64_t size);

private:
  Fd image_;
  std::string name_;
  Fd dev_fuse_;
  squash::InodeId root_id_ = 0;
  bool has_xattrs_ = false;
  uint32_t block_size_ = 0;
  struct fuse_session* se_ = nullptr;
  std::vector<std::thread> workers_;
  std::atomic<int> live_workers_{0};
  void worker();

  struct Chunk {
    uint64_t ino;
    squash::InodeId id;
    uint64_t offset;
    uint64_t length;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  std::unordered_set<uint64_t> seen_;
  std::vector<std::thread> helpers_;
  void helper();
  Fd stopped_[2];
  std::atomic<bool> stopped_flag_{false};
};

// How many serving threads to allow: the CPUs this process may use, 2 to 8.
unsigned default_threads();

}  // namespace chute::fuse
