#include "chute/image.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/mount.hpp"
#include "chute/squash.hpp"
#include "chute/supervise.hpp"
#include "chute/sys.hpp"

namespace chute::image {

namespace {

Attached attach_image(const ImageRef& image, bool writable, const std::string& squash_mount,
                      const IdMap& ids) {
  Attached a;
  if (image.kind == ImageKind::kDirectory) {
    log::verbose("image: directory {}{}", image.path, writable ? " (writable)" : "");
    a.root = mount::bind_self(image.path);
    if (!writable) mount::make_readonly(a.root.get(), image.path, true);
    return a;
  }
  a.server = std::make_unique<fuse::Server>(sys::open(image.path, O_RDONLY), image.path);
  a.server->mount(squash_mount, ids.container_uid, ids.container_gid);
  supervise::block_signals();
  a.cpus = supervise::pin_to_this_cpu();
  a.pinned = true;
  a.server->start();
  a.root = sys::open(squash_mount, O_PATH | O_DIRECTORY);
  // One READDIRPLUS of / and of /etc gives the kernel every name the set-up
  // is about to look up (/dev, /proc, /etc/passwd, ...) with its attributes:
  // two requests to the server instead of one per name.
  for (const char* dir : {"", "/etc"}) {
    int fd = ::open((squash_mount + dir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[16384];
    while (::getdents64(fd, buf, sizeof buf) > 0) {
    }
    ::close(fd);
  }
  return a;
}

}  // namespace

Attached attach(const ImageRef& image, bool writable, const std::optional<std::string>& write_fake,
                const std::string& squash_mount, const IdMap& ids) {
  Attached a = attach_image(image, writable, squash_mount, ids);
  const std::string& point = image.kind == ImageKind::kDirectory ? image.path : squash_mount;
  if (write_fake) a.root = mount::overlay(a.root.get(), point, *write_fake);
  // Only the top mount: overlayfs refuses an unbindable lower layer.
  mount::make_unbindable(point);
  return a;
}

}  // namespace chute::image
