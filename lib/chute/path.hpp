// Lexical path helpers: strings only, no file system access.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace chute::path {

bool is_absolute(std::string_view p) noexcept;

// The non-empty components of P other than ".", in order ("..", if any, kept).
std::vector<std::string> components(std::string_view p);

// True when some component of P is "..".
bool has_dotdot(std::string_view p);

// P with repeated and trailing slashes and "." components removed; ".." kept.
// An absolute P stays absolute; "" and "." give ".".
std::string normalise(std::string_view p);

// A joined with B; B's leading slashes are dropped, so join("/img", "/etc")
// is "/img/etc".
std::string join(std::string_view a, std::string_view b);

// The part before the last component ("/" for "/x", "." for "x").
std::string parent(std::string_view p);

// The last component ("" for "/").
std::string leaf(std::string_view p);

}  // namespace chute::path
