// The preflight check of injected host libraries: the dynamic linker's
// rules (objects by soname or file name, symbol versions by name) applied
// ahead of time, so that a user reads "needs GLIBC_2.38" from ch-run
// instead of a failed dlopen deep inside a CUDA or MPI program.

#include "chute/preflight.hpp"

#include <elf.h>

#include <algorithm>
#include <fmt/core.h>
#include <map>
#include <set>

namespace chute::preflight {

namespace {

std::string_view file_part(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// "GLIBC_2.36" -> {"GLIBC", "2.36"}; a name without '_' is all family.
std::pair<std::string_view, std::string_view> split_version(std::string_view v) {
  const auto u = v.rfind('_');
  if (u == std::string_view::npos) return {v, {}};
  return {v.substr(0, u), v.substr(u + 1)};
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "2", "2.36", "3.4.30": dot-separated decimal numbers.
bool is_dotted(std::string_view s) {
  if (s.empty()) return false;
  for (;;) {
    const auto dot = s.find('.');
    if (!is_digits(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

// Two decimal numbers of any length, compared without converting them.
int compare_numbers(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a.front() == '0') a.remove_prefix(1);
  while (b.size() > 1 && b.front() == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  const int c = a.compare(b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

// The next dotted part of S, removed from it; "0" when S is used up, so
// that "2.3" equals "2.3.0".
// "GLIBC_2.36" is numeric, "GLIBC_PRIVATE" is not.
bool numeric(std::string_view version) { return is_dotted(split_version(version).second); }

std::string_view next_part(std::string_view& s) {
  if (s.empty()) return "0";
  const auto dot = s.find('.');
  const std::string_view part = s.substr(0, dot);
  s.remove_prefix(dot == std::string_view::npos ? s.size() : dot + 1);
  return part;
}

std::string describe_object(int elf_class, int machine) {
  std::string bits = elf_class == ELFCLASS32   ? "32-bit"
                     : elf_class == ELFCLASS64 ? "64-bit"
                                               : fmt::format("class {}", elf_class);
  std::string arch;
  switch (machine) {
    case EM_386: arch = "i386"; break;
    case EM_X86_64: arch = "x86-64"; break;
    case EM_AARCH64: arch = "AArch64"; break;
    case EM_ARM: arch = "ARM"; break;
    case EM_PPC: arch = "PowerPC"; break;
    case EM_PPC64: arch = "PowerPC64"; break;
    case EM_RISCV: arch = "RISC-V"; break;
    case EM_S390: arch = "s390"; break;
    default: arch = fmt::format("machine {}", machine);
  }
  return bits + " " + arch;
}

std::string join(const std::vector<std::string_view>& items, size_t most) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < most; ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  if (items.size() > most) out += ", ...";
  return out;
}

// Where a needed file comes from.
struct Provider {
  const elf::Info* info;
  std::string who;   // "the image's libc.so.6", "the injected libfoo.so.1"
};

class Checker {
public:
  Checker(const std::vector<Library>& injected, const Image& image)
      : injected_(injected), image_(image) {
    // Sonames first: an object already known by its soname wins over a
    // file that merely has that name.
    for (size_t i = 0; i < injected_.size(); ++i)
      if (!injected_[i].info.soname.empty()) by_name_.emplace(injected_[i].info.soname, i);
    for (size_t i = 0; i < injected_.size(); ++i)
      by_name_.emplace(std::string(file_part(injected_[i].name)), i);
  }

  std::vector<Problem> run() {
    const std::optional<elf::Info>& libc = in_image("libc.so.6");
    for (const Library& lib : injected_) {
      // An object of another word size or machine cannot load at all; its
      // needs would only add noise.
      if (libc && !same_kind(lib.info, *libc)) {
        add(lib, fmt::format("{} is a {} object, but the image's libc.so.6 is {}: it cannot be "
                             "loaded there",
                             lib.name, describe_object(lib.info.elf_class, lib.info.machine),
                             describe_object(libc->elf_class, libc->machine)));
        continue;
      }
      std::set<std::string> missing;
      for (const std::string& needed : lib.info.needed) need_file(lib, needed, missing);
      for (const elf::VersionNeed& vn : lib.info.version_needs) {
        const std::optional<Provider> p = provider(vn.file);
        if (!p) {
          need_file(lib, vn.file, missing);
          continue;
        }
        for (const std::string& v : vn.versions)
          if (std::find(p->info->version_defs.begin(), p->info->version_defs.end(), v) ==
              p->info->version_defs.end())
            add(lib, version_message(lib, v, vn.file, *p));
      }
      check_abi(lib);
    }
    return std::move(problems_);
  }

private:
  static bool same_kind(const elf::Info& a, const elf::Info& b) {
    // 0 is "unknown" (hand-made or partial information): no verdict.
    if (a.elf_class != 0 && b.elf_class != 0 && a.elf_class != b.elf_class) return false;
    if (a.machine != 0 && b.machine != 0 && a.machine != b.machine) return false;
    return true;
  }

  void add(const Library& lib, std::string message) {
    problems_.push_back({lib.name, std::move(message)});
  }

  const std::optional<elf::Info>& in_image(const std::string& name) {
    auto it = cache_.find(name);
    if (it == cache_.end())
      it = cache_.emplace(name, image_.find ? image_.find(name) : std::nullopt).first;
    return it->second;
  }

  std::optional<Provider> provider(const std::string& file) {
    // The dynamic linker that runs is the image's, whatever was injected:
    // a need for it is met by that one, when the image has it.
    if (is_dynamic_linker(file)) {
      if (const auto& ld = in_image(file)) return Provider{&*ld, "the image's " + file};
    }
    if (auto it = by_name_.find(file); it != by_name_.end())
      return Provider{&injected_[it->second].info, "the injected " + file};
    if (const auto& found = in_image(file)) return Provider{&*found, "the image's " + file};
    return std::nullopt;
  }

  void need_file(const Library& lib, const std::string& file, std::set<std::string>& missing) {
    if (missing.contains(file) || provider(file)) return;
    missing.insert(file);
    add(lib, fmt::format("{} needs {}, which neither the image nor the injected files provide",
                         lib.name, file));
  }

  static std::string version_message(const Library& lib, const std::string& version,
                                     const std::string& file, const Provider& p) {
    const std::string head = fmt::format("{} needs {} (from {}); {}", lib.name, version, file, p.who);
    const auto& defs = p.info->version_defs;
    if (defs.empty()) return head + " defines no symbol versions";
    const std::string_view family = split_version(version).first;
    std::vector<std::string_view> same;
    std::optional<std::string_view> highest;
    for (const std::string& d : defs) {
      if (split_version(d).first != family) continue;
      same.push_back(d);
      if (numeric(d) && (!highest || compare_versions(d, *highest) > 0)) highest = d;
    }
    if (same.empty()) {
      return fmt::format("{} has no {} versions (it defines {})", head, family,
                         join(std::vector<std::string_view>(defs.begin(), defs.end()), 8));
    }
    if (highest && numeric(version)) {
      if (compare_versions(version, *highest) > 0)
        return fmt::format("{} provides at most {}", head, *highest);
      return fmt::format("{} does not define it (its {} versions go up to {})", head, family,
                         *highest);
    }
    return fmt::format("{} does not define it (its {} versions: {})", head, family, join(same, 8));
  }

  // A library whose soname's number differs from the image's copy of the
  // same library is not what the image's programs ask for: they would go
  // on loading the image's own.
  void check_abi(const Library& lib) {
    const std::string& soname = lib.info.soname;
    const auto so = soname.find(".so.");
    if (so == std::string::npos) return;
    const std::string prefix = soname.substr(0, so + 4);
    const std::string_view major = std::string_view(soname).substr(prefix.size());
    if (!is_digits(major) || !image_.names_with_prefix) return;
    std::vector<std::string> others;
    for (const std::string& name : image_.names_with_prefix(prefix)) {
      if (!name.starts_with(prefix)) continue;
      const std::string_view rest = std::string_view(name).substr(prefix.size());
      const std::string_view their = rest.substr(0, rest.find('.'));
      if (!is_digits(their) || compare_numbers(their, major) == 0) continue;
      std::string other = prefix + std::string(their);
      if (std::find(others.begin(), others.end(), other) == others.end())
        others.push_back(std::move(other));
    }
    // The image's own copy of this very soname would be replaced: fine.
    if (others.empty() || in_image(soname)) return;
    std::sort(others.begin(), others.end(), [&](const std::string& a, const std::string& b) {
      return compare_numbers(std::string_view(a).substr(prefix.size()),
                             std::string_view(b).substr(prefix.size())) < 0;
    });
    add(lib, fmt::format("host {} and the image's {} have different ABIs (sonames differ): the "
                         "image's programs would not use the injected library",
                         soname, join(std::vector<std::string_view>(others.begin(), others.end()), others.size())));
  }

  const std::vector<Library>& injected_;
  const Image& image_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, std::optional<elf::Info>> cache_;
  std::vector<Problem> problems_;
};

}  // namespace

std::vector<Problem> check(const std::vector<Library>& injected, const Image& image) {
  return Checker(injected, image).run();
}

bool is_dynamic_linker(std::string_view name) {
  const std::string_view f = file_part(name);
  const bool so = f.find(".so.") != std::string_view::npos;
  return (f.starts_with("ld-linux") && so) || (f.starts_with("ld-musl-") && so) ||
         f.starts_with("ld64.so.") || f.starts_with("ld.so.");
}

std::optional<int> compare_versions(std::string_view a, std::string_view b) {
  const auto [family_a, number_a] = split_version(a);
  const auto [family_b, number_b] = split_version(b);
  if (family_a != family_b || !is_dotted(number_a) || !is_dotted(number_b)) return std::nullopt;
  std::string_view x = number_a, y = number_b;
  while (!x.empty() || !y.empty())
    if (const int c = compare_numbers(next_part(x), next_part(y)); c != 0) return c;
  return 0;
}

}  // namespace chute::preflight
