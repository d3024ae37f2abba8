// libFuzzer target: the site configuration (chute.yaml), which users and
// administrators write by hand. Any text is parsed as JSON or YAML and
// applied over the defaults; the only way out is chute::Error, and what is
// accepted keeps the promises the launcher relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "chute/document.hpp"
#include "chute/error.hpp"
#include "chute/site.hpp"

using namespace chute;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  site::Config c = site::defaults();
  try {
    site::apply(c, doc::parse(text, "fuzz.yaml"), "fuzz.yaml");
  } catch (const Error&) {
    return 0;
  }
  // Accepted: every path chute uses as one is absolute, every profile's
  // variables are KEY=VALUE, every bind has an absolute destination.
  if (c.gpu_root.empty() || c.gpu_root[0] != '/') std::abort();
  for (const auto* list : {&c.library_dirs, &c.binary_dirs, &c.cdi_dirs, &c.nvidia.devices,
                           &c.amd.devices, &c.nvidia.files, &c.amd.files})
    for (const auto& p : *list)
      if (p.empty() || p[0] != '/') std::abort();
  for (const auto& b : c.binds)
    if (b.dst.empty() || b.dst[0] != '/') std::abort();
  for (const auto& [name, prof] : c.mpi) {
    if (name.empty() || name.find('/') != std::string::npos) std::abort();
    for (const auto& e : prof.env)
      if (e.empty() || e[0] == '=' || e.find('=') == std::string::npos) std::abort();
    for (const auto& d : prof.library_dirs)
      if (d.empty() || d[0] != '/') std::abort();
  }
  return 0;
}
