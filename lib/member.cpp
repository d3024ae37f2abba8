#include "chute/member.hpp"

#include <sys/stat.h>

#include <array>

namespace chute::member {

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::kFile: return "file";
    case Kind::kDir: return "directory";
    case Kind::kSymlink: return "symlink";
    case Kind::kHardlink: return "hard link";
    case Kind::kDevice: return "device";
    case Kind::kFifo: return "FIFO";
    case Kind::kSocket: return "socket";
  }
  return "?";
}

std::optional<std::string> clean_path(std::string_view raw, std::string& why, bool* neutralised) {
  if (neutralised) *neutralised = false;
  if (raw.size() > 4095) {
    why = "name longer than 4095 bytes";
    return std::nullopt;
  }
  if (!raw.empty() && raw.front() == '/' && neutralised) *neutralised = true;
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i <= raw.size()) {
    std::size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view comp = raw.substr(i, j - i);
    i = j + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      why = "path contains \"..\"";
      return std::nullopt;
    }
    if (comp.size() > 255) {
      why = "name component longer than 255 bytes";
      return std::nullopt;
    }
    if (!out.empty()) out += '/';
    out += comp;
  }
  return out;
}

std::string strip_dot_slash(std::string_view name) {
  while (name.substr(0, 2) == "./") name.remove_prefix(2);
  return std::string(name);
}

mode_t fix_perm(Kind k, mode_t perm) {
  perm &= 07777;
  perm &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
  if (k == Kind::kDir) return perm | S_IRWXU;
  if (k == Kind::kSymlink) return 0777;
  return perm | S_IRUSR | S_IWUSR;
}

std::string parent_of(const std::string& clean) {
  auto slash = clean.rfind('/');
  return slash == std::string::npos ? std::string() : clean.substr(0, slash);
}

std::string base_of(const std::string& clean) {
  auto slash = clean.rfind('/');
  return slash == std::string::npos ? clean : clean.substr(slash + 1);
}

bool is_within(const std::string& p, const std::string& d) {
  if (d.empty()) return true;
  if (p.size() < d.size() || p.compare(0, d.size(), d) != 0) return false;
  return p.size() == d.size() || p[d.size()] == '/';
}

WhiteoutInfo whiteout_of(const std::string& clean) {
  static constexpr std::string_view kPrefix = ".wh.";
  static constexpr std::string_view kOpaque = ".wh..wh..opq";
  const std::string base = base_of(clean);
  if (base.compare(0, kPrefix.size(), kPrefix) != 0) return {};
  const std::string dir = parent_of(clean);
  if (base == kOpaque) return {Whiteout::kOpaque, dir};
  std::string victim = base.substr(kPrefix.size());
  // ".wh." alone, ".wh..", ".wh..." and other AUFS metadata (".wh..wh.*")
  // name nothing that can be deleted.
  if (victim.empty() || victim == "." || victim == ".." || victim.compare(0, 4, ".wh.") == 0)
    return {Whiteout::kInvalid, {}};
  return {Whiteout::kDelete, dir.empty() ? victim : dir + "/" + victim};
}

bool is_standard_root_dir(std::string_view name) {
  static constexpr std::array<std::string_view, 22> kDirs = {
      "bin", "boot", "ch", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media",
      "mnt", "opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var"};
  for (auto d : kDirs)
    if (d == name) return true;
  return false;
}

void TopLevel::see(const std::string& clean, Kind k) {
  if (clean.empty() || too_many_) return;
  const auto slash = clean.find('/');
  const std::string top = clean.substr(0, slash);
  if (slash == std::string::npos && k != Kind::kDir) top_non_dir_ = true;
  names_.insert(top);
  if (names_.size() > 1) too_many_ = true;
}

std::string TopLevel::root() const {
  if (too_many_ || top_non_dir_ || names_.size() != 1) return {};
  const std::string& top = *names_.begin();
  return is_standard_root_dir(top) ? std::string() : top;
}

const std::vector<MountPoint>& mount_points() {
  static const std::vector<MountPoint> kList = {
      {"dev", Kind::kDir},  {"proc", Kind::kDir},           {"sys", Kind::kDir},
      {"tmp", Kind::kDir},  {"home", Kind::kDir},           {"mnt", Kind::kDir},
      {"etc", Kind::kDir},  {"etc/hosts", Kind::kFile},     {"etc/resolv.conf", Kind::kFile},
  };
  return kList;
}

}  // namespace chute::member
