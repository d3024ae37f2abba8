// The one uid and one gid a container maps: pure.
#pragma once

#include <sys/types.h>

#include <string>

namespace chute {

struct IdMap {
  uid_t container_uid = 0;
  uid_t host_uid = 0;
  gid_t container_gid = 0;
  gid_t host_gid = 0;
};

namespace idmap {

// The line for /proc/PID/uid_map: "INSIDE OUTSIDE 1\n".
std::string uid_map_line(const IdMap& m);
std::string gid_map_line(const IdMap& m);

// Parse a positive decimal id as given on the command line ("0".."4294967294");
// throws Error naming OPTION.
unsigned parse_id(std::string_view text, std::string_view option);

}  // namespace idmap
}  // namespace chute
