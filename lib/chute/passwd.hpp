// The /etc/passwd and /etc/group a container gets: pure text generation.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace chute::passwd {

// What the host knows of the container's uid and gid.
struct HostNames {
  std::optional<std::string> user;    // getpwuid(container uid)->pw_name
  std::string gecos;
  std::optional<std::string> group;   // getgrgid(container gid)->gr_name
};

// Look the container ids up in the host's user database (NSS).
HostNames lookup(uid_t uid, gid_t gid);

// root (unless UID is 0), nobody (unless UID is 65534), then UID with the
// host's name, or "charlie" when the host does not know UID. HOME is the
// home directory written for UID.
std::string passwd_text(uid_t uid, gid_t gid, const HostNames& names, const std::string& home);

// root (unless GID is 0), nogroup (unless GID is 65534), then GID with the
// host's name, or "charliegroup".
std::string group_text(gid_t gid, const HostNames& names);

}  // namespace chute::passwd
