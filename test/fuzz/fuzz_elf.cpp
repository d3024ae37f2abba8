// libFuzzer target: the ELF reader, which reads libraries that sites, CDI
// specs and images name, and the preflight check over what it finds. The
// reader may only fail with Error; what it returns must be usable by the
// check, as an injected library and as the image's provider, without a
// crash or a rule broken.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "chute/elf.hpp"
#include "chute/error.hpp"
#include "chute/preflight.hpp"

using namespace chute;

namespace {

elf::Info small_libc() {
  elf::Info libc;
  libc.elf_class = 2;   // ELFCLASS64
  libc.machine = 62;    // EM_X86_64
  libc.soname = "libc.so.6";
  libc.version_defs = {"GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.34", "GLIBC_PRIVATE"};
  return libc;
}

void check_order(std::string_view a, std::string_view b) {
  const auto ab = preflight::compare_versions(a, b);
  const auto ba = preflight::compare_versions(b, a);
  if (ab.has_value() != ba.has_value()) std::abort();
  if (ab && (*ab > 0) != (*ba < 0)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  elf::Info info;
  try {
    info = elf::read_memory(bytes, "fuzz");
  } catch (const Error&) {
    return 0;
  }
  if (info.elf_class != 1 && info.elf_class != 2) std::abort();

  // The object's own versions, compared with each other and with glibc's.
  for (const auto& d : info.version_defs) {
    check_order(d, "GLIBC_2.34");
    if (!info.version_defs.empty()) check_order(d, info.version_defs.front());
  }

  // As an injected library in an image whose libc is small, whose other
  // objects are the fuzzed one itself, and whose library directory holds
  // other majors of every soname asked about.
  const elf::Info libc = small_libc();
  preflight::Image image;
  image.find = [&](const std::string& name) -> std::optional<elf::Info> {
    if (name == "libc.so.6") return libc;
    if (name.size() % 2 == 0) return info;
    return std::nullopt;
  };
  image.names_with_prefix = [](const std::string& prefix) {
    return std::vector<std::string>{prefix + "0", prefix + "999.1", prefix + "x"};
  };
  const std::vector<preflight::Library> injected = {{"/fuzz/lib.so", info},
                                                    {"/fuzz/libc.so.6", libc}};
  for (const auto& p : preflight::check(injected, image))
    if (p.message.empty() || p.library.empty()) std::abort();
  return 0;
}
