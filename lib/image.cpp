#include "chute/image.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/mount.hpp"
#include "chute/fuse_server.hpp"
#include "chute/sys.hpp"

namespace chute::image {

namespace {

Fd finish(Fd root, const std::string& point, const std::optional<std::string>& write_fake) {
  if (write_fake) root = mount::overlay(root.get(), point, *write_fake);
  // Only the top mount: overlayfs refuses an unbindable lower layer.
  mount::make_unbindable(point);
  return root;
}

}  // namespace

Fd attach_directory(const ImageRef& image, bool writable,
                    const std::optional<std::string>& write_fake) {
  log::verbose("image: directory {}{}", image.path, writable ? " (writable)" : "");
  // Absolute: looked up from the working directory itself (IMAGE "."), a
  // path would not cross the new mount, and would name the host's
  // directory under it.
  const std::string path = sys::try_canonical(image.path).value_or(image.path);
  Fd root = mount::bind_self(path);
  if (!writable) mount::make_readonly(root.get(), path, true);
  return finish(std::move(root), path, write_fake);
}

Fd attach_squash(int dev_fd, const ImageRef& image, const std::string& mount_point,
                 const std::optional<std::string>& write_fake, const IdMap& ids,
                 const std::function<void()>& mounted) {
  fuse::mount(dev_fd, image.path, mount_point, ids.container_uid, ids.container_gid);
  // This process uses the mount from now on, so it must not hold /dev/fuse:
  // if the server dies, closing its own descriptor must abort the connection.
  ::close(dev_fd);
  mounted();
  log::trace("stage: image mounted");
  Fd root = sys::open(mount_point, O_PATH | O_DIRECTORY);
  log::trace("stage: image root opened");
  // One READDIRPLUS of / and of /etc gives the kernel every name the set-up
  // is about to look up (/dev, /proc, /etc/passwd, ...) with its attributes:
  // two requests to the server instead of one per name.
  for (const char* dir : {"", "/etc"}) {
    int fd = ::open((mount_point + dir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[16384];
    while (::getdents64(fd, buf, sizeof buf) > 0) {
    }
    ::close(fd);
  }
  return finish(std::move(root), mount_point, write_fake);
}

}  // namespace chute::image
