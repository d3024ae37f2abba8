// Entering the container's user and mount namespaces.
#pragma once

#include "chute/idmap.hpp"

namespace chute::userns {

// unshare(CLONE_NEWUSER | CLONE_NEWNS), deny setgroups, map exactly one uid
// and one gid. Must be called while the process has one thread.
void enter(const IdMap& ids);

}  // namespace chute::userns
