// Where converted images go: a directory, a SquashFS file or a tarball. Every
// sink builds its output under a temporary name next to the destination and
// puts it in place in commit(); destroyed without commit(), it removes
// everything it wrote.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "chute/member.hpp"

namespace chute::sink {

// A file's data, one block at a time; an empty block ends it.
class Data {
public:
  virtual ~Data() = default;
  virtual std::span<const char> next() = 0;
};

class Sink {
public:
  virtual ~Sink() = default;
  // Add one member (never a device, FIFO or socket; paths already clean).
  // Missing parent directories are created; a member whose parent is not a
  // directory is an Error.
  virtual void add(const member::Member& m, Data* data) = 0;
  // Whether something (of any kind) is at PATH, without following symlinks;
  // paths under a symlink count as present so nothing is written through it.
  virtual bool exists(const std::string& path) = 0;
  // Use directory SUBDIR, already added, as the root of the output. Paths
  // added later are relative to it.
  virtual void set_root(const std::string& subdir) = 0;
  // Finish the output and put it in place (replacing what is there).
  virtual void commit() = 0;
  virtual std::uint64_t bytes_written() const = 0;
};

std::unique_ptr<Sink> dir_sink(const std::string& out, bool xattrs);

struct SquashOptions {
  std::string compressor = "zstd";
  int level = 0;  // 0: the compressor's default in chute (see doc/ch-convert.1)
  std::uint32_t block_size = 128 * 1024;
  unsigned jobs = 0;  // compression threads; 0: one per CPU
};
std::unique_ptr<Sink> squash_sink(const std::string& out, const SquashOptions& o, bool xattrs);
// The compressors and default levels chute knows ("zstd", "gzip", ...).
bool squash_compressor_known(const std::string& name);
int squash_default_level(const std::string& name);

std::unique_ptr<Sink> tar_sink(const std::string& out, bool xattrs);

// The umask the user had: chute unpacks with umask 0 (modes as in the
// image), and applies this one to output files and the output directory.
mode_t& output_umask();

// A temporary output path next to OUT: "DIR/.BASE.ch-convert-XXXXXX".
// Each sink creates it (mkdtemp or mkostemp) and removes it if not
// committed. Exposed for tests and for the converter's checks.
std::string temp_pattern(const std::string& out);
// Put TMP at OUT: atomically replaces whatever is at OUT (the old tree is
// then removed).
void put_in_place(const std::string& tmp, const std::string& out);
// Remove PATH and, if it is a directory, everything under it, never
// following symlinks. Missing is not an error.
void remove_tree(const std::string& path);

}  // namespace chute::sink
