#include "chute/userns.hpp"

#include <sched.h>

#include <cerrno>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/sys.hpp"

namespace chute::userns {

void enter(const IdMap& ids, bool mount_ns) {
  log::verbose("namespaces: uid {} -> {}, gid {} -> {}", ids.host_uid, ids.container_uid,
               ids.host_gid, ids.container_gid);
  if (::unshare(CLONE_NEWUSER | (mount_ns ? CLONE_NEWNS : 0)) != 0) {
    int e = errno;
    std::string hint;
    switch (e) {
      case EPERM:
        hint = " (unprivileged user namespaces disabled? run ch-checkns)";
        break;
      case ENOSPC:
        hint = " (user.max_user_namespaces reached? run ch-checkns)";
        break;
      case EINVAL:
        hint = " (more than one thread?)";
        break;
      default:
        break;
    }
    throw SysError(e, (mount_ns ? "can't create user+mount namespace" : "can't create user namespace") + hint);
  }
  sys::write_file("/proc/self/setgroups", "deny");
  sys::write_file("/proc/self/uid_map", idmap::uid_map_line(ids));
  sys::write_file("/proc/self/gid_map", idmap::gid_map_line(ids));
}

}  // namespace chute::userns
