// libFuzzer target: the check of a SquashFS image before a run. Images come
// from anywhere (built elsewhere, copied, cut short by a full disk), and
// check_fd() reads the superblock, walks the metadata tables and lists the
// root through libsquashfuse. The input is the image, in a memory file.
// Bad bytes end in chute's errors, never a crash; what is accepted has the
// superblock the check promises, and its root's files read as the server
// reads them without a crash (errors are fine: the data may be corrupt).
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "chute/error.hpp"
#include "chute/squash.hpp"

using namespace chute;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = ::memfd_create("fuzz.sqfs", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    std::abort();

  squash::Info info;
  try {
    info = squash::check_fd(fd, "fuzz.sqfs");
  } catch (const Error&) {
    return 0;
  } catch (const SysError&) {
    return 0;
  }
  // Accepted: a superblock chute can serve, within the file.
  if (info.block_size < 4096 || info.block_size > (1u << 20) ||
      (info.block_size & (info.block_size - 1)) != 0)
    std::abort();
  if (info.bytes_used > size) std::abort();
  if (info.compression.empty() || info.compression.starts_with("unknown")) std::abort();
  // The check read the tables and the root as the server will: a Reader
  // opens the image too.
  squash::Reader r(fd, "fuzz.sqfs");
  if (!r.ok()) std::abort();
  std::vector<squash::InodeId> files;
  r.readdir(r.root(), 0, [&](std::string_view, squash::InodeId id, mode_t mode, off_t) {
    if (S_ISREG(mode) && files.size() < 16) files.push_back(id);
    return true;
  });
  static char buf[1 << 17];
  for (auto id : files) {
    size_t got = 0;
    for (off_t off = 0; off < (1 << 20); off += sizeof buf) {
      if (r.read(id, off, sizeof buf, buf, got) != 0 || got == 0) break;
    }
  }
  return 0;
}
