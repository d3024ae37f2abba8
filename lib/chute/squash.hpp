// SquashFS images through libsquashfuse's core library: checking an image
// before a run, and reading it. libsquashfuse's caches are not thread-safe,
// so each serving thread has its own Reader (its own sqfs handle and caches)
// over the one shared, read-only descriptor: no locks on the read path, and
// threads never wait for each other.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <string_view>

#include "chute/fd.hpp"

struct sqfs;
struct sqfs_inode;

namespace chute::squash {

// What a check of the superblock found.
struct Info {
  std::string compression;   // "gzip", "zstd", ...
  uint32_t block_size = 0;
  uint32_t inodes = 0;
  uint64_t bytes_used = 0;
  bool has_xattrs = false;
};

// Open PATH and check it is a SquashFS image chute can serve: magic, version
// 4.0, a compression this build decompresses, not truncated, a readable root
// directory. Throws Error (or SysError) naming PATH and what is wrong.
Info check(const std::string& path);

// Same, on an open descriptor (its name used in messages).
Info check_fd(int fd, std::string_view name);

using InodeId = uint64_t;

// Per-thread access to an image. Methods return 0 or an errno value; they
// never throw (they run under FUSE callbacks).
class Reader {
public:
  Reader(int fd, std::string_view name);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  bool ok() const { return fs_ != nullptr; }
  InodeId root() const;
  bool has_xattrs() const;

  int stat(InodeId id, struct stat& st);
  // Look NAME up in directory DIR.
  int lookup(InodeId dir, std::string_view name, InodeId& found, struct stat& st);
  // Entries of DIR from OFFSET (0 at the start); FN gets each name, inode,
  // mode (type bits) and the offset after it, and returns false to stop.
  int readdir(InodeId dir, off_t offset,
              const std::function<bool(std::string_view, InodeId, mode_t, off_t)>& fn);
  // Read into BUF up to SIZE bytes at OFFSET of the regular file ID; GOT is
  // set to the bytes read (less at the end of the file).
  int read(InodeId id, off_t offset, size_t size, char* buf, size_t& got);
  int readlink(InodeId id, std::string& target);
  // listxattr: the NUL-separated names; getxattr: the value of NAME.
  int listxattr(InodeId id, std::string& names);
  int getxattr(InodeId id, const char* name, std::string& value);
  int statfs(struct statvfs& sv);

private:
  bool dir_ok(InodeId id, const ::sqfs_inode& inode, bool index);
  sqfs* fs_ = nullptr;
  uint32_t ids_ok_ = 0;                   // id table entries checked good
  std::unordered_set<InodeId> listed_;    // directories whose listing was checked
  std::unordered_set<InodeId> indexed_;   // ... and whose index too
};

}  // namespace chute::squash
