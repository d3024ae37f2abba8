// Making an image the tree a container will pivot into.
#pragma once

#include <sched.h>

#include <memory>
#include <optional>
#include <string>

#include "chute/fd.hpp"
#include "chute/fuse_server.hpp"
#include "chute/idmap.hpp"
#include "chute/image_ref.hpp"

namespace chute::image {

struct Attached {
  Fd root;                               // the image's root, opened O_PATH
  std::unique_ptr<fuse::Server> server;  // SquashFS: serving until the process exits
  bool pinned = false;                   // set-up pinned to one CPU (see supervise)
  cpu_set_t cpus{};                      // the CPUs to restore then
};

// Attach IMAGE inside the current (private) mount namespace. A directory is
// bound onto itself, read-only unless WRITABLE; a SquashFS file is mounted
// with FUSE on SQUASH_MOUNT, served by threads of this process (the
// supervisor's signals are blocked first, for those threads to inherit, and
// the set-up is pinned to one CPU until restore_cpus()).
// With WRITE_FAKE (a tmpfs size), a writable overlay goes on top.
Attached attach(const ImageRef& image, bool writable, const std::optional<std::string>& write_fake,
                const std::string& squash_mount, const IdMap& ids);

}  // namespace chute::image
