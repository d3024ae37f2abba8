// Entering the container's user and mount namespaces.
#pragma once

#include "chute/idmap.hpp"

namespace chute::userns {

// unshare(CLONE_NEWUSER | CLONE_NEWNS) (without CLONE_NEWNS if not
// MOUNT_NS), deny setgroups, map exactly one uid and one gid. Must be called
// while the process has one thread.
void enter(const IdMap& ids, bool mount_ns = true);

}  // namespace chute::userns
