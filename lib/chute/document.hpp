// Structured text from outside (CDI specs, the site configuration): JSON or
// YAML, read into one tree type so that each reader walks one kind of value.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace chute::doc {

using Value = nlohmann::json;

// Parse TEXT, named NAME in errors: JSON when its first non-blank character
// is '{' or '[', else YAML (libyaml). YAML scalars become strings (callers
// convert what must be numbers or booleans with the helpers below); YAML
// null becomes null. Throws Error naming NAME and the line on a syntax error.
Value parse(std::string_view text, std::string_view name);

// Read and parse the file at PATH (at most 4 MiB).
Value load(const std::string& path);

// Typed access with errors that name the file and the key path, e.g.
// "/etc/cdi/x.yaml: devices[2].name: expected a string".
std::string as_string(const Value& v, std::string_view where);
bool as_bool(const Value& v, std::string_view where);
long long as_int(const Value& v, std::string_view where);
// A string, or a list of strings (a lone string is a list of one).
std::vector<std::string> as_strings(const Value& v, std::string_view where);

}  // namespace chute::doc
