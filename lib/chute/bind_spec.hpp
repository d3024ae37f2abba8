// -b/--bind SRC[:DST[:OPTS]]: pure parsing and validation.
#pragma once

#include <string>
#include <string_view>

namespace chute {

struct BindSpec {
  std::string src;       // host path, as given
  std::string dst;       // path inside the image: absolute, normalised
  bool readonly = false;

  bool operator==(const BindSpec&) const = default;
};

namespace bind_spec {

// SRC              bind SRC at the same path inside the image
// SRC:DST          bind SRC at DST
// SRC:DST:ro       ... read-only ("rw", the default, is also accepted)
// SRC::ro          read-only at the same path
// Throws Error naming the argument when it is malformed.
BindSpec parse(std::string_view arg);

}  // namespace bind_spec
}  // namespace chute
