// libFuzzer target: --seccomp-deny's profiles, written by hand. Any text is
// parsed; the only way out is chute::Error, and what is accepted names
// system calls libseccomp knows with an errno from 1 to 4095, and compiles
// into a filter the kernel would take (or fails with Error when too long).
#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chute/error.hpp"
#include "chute/seccomp.hpp"

using namespace chute;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  seccomp::Policy policy;
  try {
    policy.deny = seccomp::parse_profile(text, "fuzz.prof");
  } catch (const Error&) {
    return 0;
  }
  for (const auto& r : policy.deny)
    if (!seccomp::known_call(r.name) || r.err < 1 || r.err > 4095) std::abort();
  // Half the inputs with root emulation too, by their length.
  policy.emulate_root = size % 2 == 1;
  seccomp::Program p;
  try {
    p = seccomp::compile(policy);
  } catch (const Error&) {
    return 0;
  }
  if (policy.empty() != p.code.empty() || p.code.size() > BPF_MAXINSNS) std::abort();
  if (policy.emulate_root != (p.kexec_errno >= 0)) std::abort();
  return 0;
}
