#include "chute/image_ref.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/path.hpp"
#include "chute/sys.hpp"

namespace chute::image_ref {

std::string mangle(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '/') c = '%';
    else if (c == ':') c = '+';
  }
  return out;
}

std::string storage_dir(const std::optional<std::string>& option,
                        std::optional<std::string_view> env_storage, std::string_view user) {
  if (option) return *option;
  if (env_storage && !env_storage->empty()) return std::string(*env_storage);
  return fmt::format("/var/tmp/{}.ch", user);
}

bool is_under(std::string_view path, std::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  if (dir == "/") return true;
  return path == dir || (path.starts_with(dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

ImageRef resolve(std::string_view arg, const std::string& storage, bool unsafe) {
  ImageRef ref;
  ref.arg = std::string(arg);
  if (arg.empty()) throw Error("image argument is empty");

  // 1. A name in storage. "." and ".." are paths: mangled, they would still
  // name the storage's img directory and the storage directory itself.
  std::string named;
  if (!path::is_absolute(arg) && arg != "." && arg != "..") {
    named = path::join(path::join(storage, "img"), mangle(arg));
    if (auto st = sys::try_stat(named); st && S_ISDIR(st->st_mode)) {
      ref.kind = ImageKind::kDirectory;
      ref.path = sys::try_canonical(named).value_or(named);
      ref.from_storage = true;
      return ref;
    }
  }

  // 2. A path.
  struct stat st;
  if (::stat(ref.arg.c_str(), &st) != 0) {
    int e = errno;
    // Say where the name was looked for too: the storage directory depends
    // on -s, $CH_IMAGE_STORAGE and $USER.
    if (!named.empty())
      throw SysError(e, fmt::format("can't find image: {} (nor {} in storage)", arg, named));
    throw SysError(e, fmt::format("can't find image: {}", arg));
  }
  ref.path = ref.arg;

  if (S_ISDIR(st.st_mode)) {
    ref.kind = ImageKind::kDirectory;
    // Canonical paths only when storage exists: realpath(3) costs a system
    // call per component, at every start.
    if (!unsafe) {
      if (auto s = sys::try_canonical(storage)) {
        auto real = sys::try_canonical(ref.arg);
        if (!real) {
          int e = errno;
          throw SysError(e, fmt::format("can't resolve image path: {}", arg));
        }
        if (is_under(*real, *s))
          throw Error(fmt::format("can't run directory images from storage (hint: run by name, "
                                  "or use --unsafe): {}", arg));
      }
    }
    return ref;
  }

  // 3. A SquashFS file, recognised by its magic, not its name. Only a
  // regular file: opening a FIFO would wait for a writer, reading a device
  // would read anything.
  if (!S_ISREG(st.st_mode))
    throw Error(fmt::format("unknown image type (not a directory, not SquashFS): {}", arg));
  int fd = ::open(ref.arg.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't open image: {}", arg));
  }
  char magic[4] = {};
  ssize_t n = ::read(fd, magic, sizeof magic);
  int e = errno;
  ::close(fd);
  if (n < 0) throw SysError(e, fmt::format("can't read image: {}", arg));
  if (n == 4 && std::memcmp(magic, "hsqs", 4) == 0) {
    ref.kind = ImageKind::kSquash;
    return ref;
  }
  throw Error(fmt::format("unknown image type (not a directory, not SquashFS): {}", arg));
}

}  // namespace chute::image_ref
