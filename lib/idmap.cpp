#include "chute/idmap.hpp"

#include <charconv>
#include <fmt/core.h>

#include "chute/error.hpp"

namespace chute::idmap {

std::string uid_map_line(const IdMap& m) {
  return fmt::format("{} {} 1\n", m.container_uid, m.host_uid);
}

std::string gid_map_line(const IdMap& m) {
  return fmt::format("{} {} 1\n", m.container_gid, m.host_gid);
}

unsigned parse_id(std::string_view text, std::string_view option) {
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  // (uid_t)-1 means "no change" to the kernel's set*id calls: never an id.
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      v >= 0xFFFFFFFFull)
    throw Error(fmt::format("{}: not a valid id: {:?}", option, text));
  return static_cast<unsigned>(v);
}

}  // namespace chute::idmap
