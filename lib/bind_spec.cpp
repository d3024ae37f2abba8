#include "chute/bind_spec.hpp"

#include <fmt/core.h>

#include <vector>

#include "chute/error.hpp"
#include "chute/path.hpp"

namespace chute::bind_spec {

namespace {

std::vector<std::string_view> split_colons(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  for (;;) {
    size_t j = s.find(':', i);
    if (j == std::string_view::npos) {
      parts.push_back(s.substr(i));
      return parts;
    }
    parts.push_back(s.substr(i, j - i));
    i = j + 1;
  }
}

}  // namespace

BindSpec parse(std::string_view arg) {
  auto bad = [&](std::string_view why) {
    return Error(fmt::format("--bind: invalid argument {:?}: {}", arg, why));
  };
  if (arg.empty()) throw bad("empty");
  if (arg.find('\0') != std::string_view::npos) throw bad("contains a NUL byte");
  auto parts = split_colons(arg);
  if (parts.size() > 3) throw bad("too many colons (SRC[:DST[:ro|rw]])");
  BindSpec b;
  b.src = std::string(parts[0]);
  if (b.src.empty()) throw bad("SRC is empty");
  std::string_view dst = parts.size() >= 2 ? parts[1] : parts[0];
  if (parts.size() == 2 && dst.empty()) throw bad("DST is empty");
  if (parts.size() == 3) {
    if (parts[2] == "ro")
      b.readonly = true;
    else if (parts[2] != "rw")
      throw bad(fmt::format("unknown option {:?} (expected \"ro\" or \"rw\")", parts[2]));
    if (dst.empty()) dst = parts[0];
  }
  if (!path::is_absolute(dst)) throw bad(fmt::format("DST {:?} is not absolute", dst));
  if (path::has_dotdot(dst)) throw bad(fmt::format("DST {:?} contains \"..\"", dst));
  b.dst = path::normalise(dst);
  if (b.dst == "/") throw bad("DST must not be \"/\"");
  return b;
}

}  // namespace chute::bind_spec
