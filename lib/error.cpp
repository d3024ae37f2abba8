#include "chute/error.hpp"

#include <fmt/core.h>

#include <cstring>
#include <string_view>

namespace chute {

namespace {

std::string_view base_name(const char* file) {
  std::string_view f(file);
  auto slash = f.rfind('/');
  return slash == std::string_view::npos ? f : f.substr(slash + 1);
}

}  // namespace

std::string describe(const std::exception& e) {
  if (auto* s = dynamic_cast<const SysError*>(&e)) {
    return fmt::format("{}: {} ({}:{} {})", s->message(), std::strerror(s->err()),
                       base_name(s->where().file_name()), s->where().line(), s->err());
  }
  if (auto* l = dynamic_cast<const Error*>(&e)) {
    return fmt::format("{} ({}:{})", e.what(), base_name(l->where().file_name()),
                       l->where().line());
  }
  return e.what();
}

int exit_code_of(const std::exception& e) noexcept {
  if (auto* l = dynamic_cast<const Located*>(&e)) return l->exit_code();
  return kExitMisc;
}

}  // namespace chute
