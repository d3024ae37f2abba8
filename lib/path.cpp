#include "chute/path.hpp"

namespace chute::path {

bool is_absolute(std::string_view p) noexcept { return !p.empty() && p.front() == '/'; }

std::vector<std::string> components(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    if (!c.empty() && c != ".") out.emplace_back(c);
    i = j + 1;
  }
  return out;
}

bool has_dotdot(std::string_view p) {
  for (const auto& c : components(p))
    if (c == "..") return true;
  return false;
}

std::string normalise(std::string_view p) {
  std::string out = is_absolute(p) ? "/" : "";
  for (const auto& c : components(p)) {
    if (!out.empty() && out.back() != '/') out += '/';
    out += c;
  }
  return out.empty() ? "." : out;
}

std::string join(std::string_view a, std::string_view b) {
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  std::string out(a);
  if (b.empty()) return out;
  if (out.empty() || out.back() != '/') out += '/';
  out += b;
  return out;
}

std::string parent(std::string_view p) {
  std::string n = normalise(p);
  auto slash = n.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return n.substr(0, slash);
}

std::string leaf(std::string_view p) {
  std::string n = normalise(p);
  if (n == "/") return "";
  auto slash = n.rfind('/');
  return slash == std::string::npos ? n : n.substr(slash + 1);
}

}  // namespace chute::path
