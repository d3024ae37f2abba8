// Small text helpers shared by the readers of host files and variables.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace chute::text {

// TEXT cut at each DELIM. Empty pieces are dropped unless KEEP_EMPTY
// ("a,,b" gives a, b; with KEEP_EMPTY a, "", b). A trailing delimiter adds
// no piece in either case.
std::vector<std::string> split(std::string_view text, char delim, bool keep_empty = false);

// S without leading and trailing blanks (spaces, tabs, carriage returns).
std::string trim(std::string_view s);

}  // namespace chute::text
