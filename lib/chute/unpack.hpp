// Reading archives with libarchive: tarballs in any compression libarchive
// knows (detected by content), members of archives inside archives (the
// layers of a docker-archive), with decompression on a second thread and
// digests checked as the bytes go by.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chute/fd.hpp"
#include "chute/member.hpp"
#include "chute/oci.hpp"

struct archive;

namespace chute::unpack {

// Raw bytes: a file, a slice of one, or a member of an archive.
class ByteSource {
public:
  virtual ~ByteSource() = default;
  // Up to N bytes into BUF; 0 at the end. Throws Error naming the source.
  virtual std::size_t read(char* buf, std::size_t n) = 0;
  // Position at OFFSET bytes from the start, if this source can.
  virtual bool seek(std::uint64_t) { return false; }
  virtual const std::string& name() const = 0;
};

// Bytes read from input files, for progress reports (all threads add).
std::atomic<std::uint64_t>& bytes_read();

std::unique_ptr<ByteSource> open_file(const std::string& path, const std::string& name);
std::unique_ptr<ByteSource> from_memory(std::string data, const std::string& name);
// SRC, checked against DIGEST (and SIZE) when its last byte has been read.
std::unique_ptr<ByteSource> verified(std::unique_ptr<ByteSource> src, const oci::Digest& digest,
                                     std::optional<std::uint64_t> size);

// One member of an archive as read, before any of chute's rules apply.
struct RawMember {
  std::string name;
  member::Kind kind = member::Kind::kFile;
  mode_t perm = 0;
  std::int64_t mtime = 0;
  std::uint64_t size = 0;
  std::string link;  // symlink target or hard link target, as written
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// Sequential reader of an archive of members (tar, cpio, zip, ...).
class Archive {
public:
  // THREADED: decompress on a second thread (when the archive is big
  // enough for that to pay).
  Archive(std::unique_ptr<ByteSource> src, bool threaded);
  ~Archive();
  Archive(const Archive&) = delete;
  Archive& operator=(const Archive&) = delete;

  // The next member, or false at the end of the archive.
  bool next(RawMember& m);
  // The current member's data, one block at a time; empty at its end.
  std::span<const char> data();
  // Read the current member's data into a string (at most LIMIT bytes).
  std::string slurp(std::size_t limit);
  // Read whatever follows the end of the archive, so that a digest check
  // of the source happens (and throws) now: call after next() said false.
  void drain();
  // The byte offset of the current member's header in an uncompressed archive.
  std::int64_t header_offset() const;
  // True if the archive's bytes are not compressed (offsets are file offsets).
  bool uncompressed() const;
  const std::string& name() const;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

// The data of member MEMBER of the archive file PATH (NAME in messages), found
// from OFFSET (a header offset from header_offset(), or -1 to scan from the
// start).
std::unique_ptr<ByteSource> open_member(const std::string& path, const std::string& name,
                                        const std::string& member, std::int64_t offset);

}  // namespace chute::unpack
