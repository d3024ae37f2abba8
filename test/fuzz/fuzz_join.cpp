// libFuzzer target: the parsers of --join's outside input (tags from the
// command line and the environment, Slurm's tasks-per-node lists, peer
// counts from variables) and the comparison of a peer's fingerprint, which
// comes from another process. None may crash, and what they accept must
// hold the rules they promise.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "chute/error.hpp"
#include "chute/join.hpp"

using namespace chute;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:  // a tag: accepted ones are short and hold no path or space characters
      try {
        join::check_tag(text);
        if (text.empty() || text.size() > 64 || text.find_first_of("/ \t\n\\\0", 0, 6) != std::string::npos)
          std::abort();
        if (join::socket_name(1000, text).size() > 100) std::abort();
      } catch (const Error&) {
      }
      break;
    case 1: {  // a tasks-per-node list, for several node ids
      for (long node : {0L, 1L, 7L, 1000000L}) {
        auto n = join::tasks_on_node(text, node);
        if (n && *n <= 0) std::abort();
      }
      break;
    }
    case 2: {  // counts from variables
      Environment env;
      const auto mid = text.find('\x01');
      env.set("SLURM_STEP_TASKS_PER_NODE", text.substr(0, mid));
      if (mid != std::string::npos) env.set("SLURM_NODEID", text.substr(mid + 1));
      try {
        if (join::resolve_count(std::nullopt, env).first <= 0) std::abort();
      } catch (const Error&) {
      }
      try {
        if (join::resolve_count(text, env).first <= 0) std::abort();
      } catch (const Error&) {
      }
      break;
    }
    case 3: {  // a peer's fingerprint against ours
      const auto mid = text.size() / 2;
      const std::string_view a(text.data(), mid), b(text.data() + mid, text.size() - mid);
      const std::string d = join::first_difference(a, b);
      if (d.empty() != (a == b) && a.size() == b.size()) {
        // Equal texts must compare equal; different ones of equal length differ.
        std::abort();
      }
      if (!join::first_difference(a, a).empty()) std::abort();
      break;
    }
  }
  return 0;
}
