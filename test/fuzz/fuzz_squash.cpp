// libFuzzer target: the check of a SquashFS image before a run. Images come
// from anywhere (built elsewhere, copied, cut short by a full disk), and
// check_fd() reads the superblock, walks the metadata tables and lists the
// root through libsquashfuse. The input is the image, in a memory file.
// Bad bytes end in chute's errors, never a crash; what is accepted has the
// superblock the check promises. (Reading files of an accepted image is the
// server's business, not the check's, and is left out here.)
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

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
  if (!squash::Reader(fd, "fuzz.sqfs").ok()) std::abort();
  return 0;
}
