// Making an image the tree a container will pivot into.
#pragma once

#include <sched.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "chute/fd.hpp"
#include "chute/idmap.hpp"
#include "chute/image_ref.hpp"

namespace chute::image {

// Attach directory IMAGE inside the current (private) mount namespace: bind
// it onto itself, read-only unless WRITABLE; with WRITE_FAKE (a tmpfs size),
// a writable overlay on top. Returns its root, opened O_PATH.
Fd attach_directory(const ImageRef& image, bool writable,
                    const std::optional<std::string>& write_fake);

// In the child that becomes the job: mount the SquashFS image served on
// DEV_FD on MOUNT_POINT (this process's own mount namespace), close DEV_FD,
// call MOUNTED (the server can start: nothing is answered before), and
// return the root, with an overlay if WRITE_FAKE.
Fd attach_squash(int dev_fd, const ImageRef& image, const std::string& mount_point,
                 const std::optional<std::string>& write_fake, const IdMap& ids,
                 const std::function<void()>& mounted);

}  // namespace chute::image
