#include "chute/document.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/sys.hpp"

namespace chute::doc {

namespace {

constexpr size_t kMaxBytes = 4 << 20;
constexpr int kMaxDepth = 64;

// YAML aliases let a few bytes name a large tree many times over ("billion
// laughs"), and each use is copied here. BUDGET: what the copy may still
// cost, one per node plus the bytes of each scalar. A document without
// aliases costs less than twice its size; parse() allows four times its
// size and 256 Ki more, room for any reasonable use of aliases.
void spend(size_t& budget, size_t cost, std::string_view name) {
  if (cost > budget)
    throw Error(fmt::format("{}: too large once its YAML aliases are expanded", name));
  budget -= cost;
}

Value from_yaml(const YAML::Node& n, int depth, std::string_view name, size_t& budget) {
  if (depth > kMaxDepth)
    throw Error(fmt::format("{}: nested more than {} levels deep", name, kMaxDepth));
  spend(budget, 1, name);
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      spend(budget, n.Scalar().size(), name);
      return n.Scalar();
    case YAML::NodeType::Sequence: {
      Value a = Value::array();
      for (const auto& e : n) a.push_back(from_yaml(e, depth + 1, name, budget));
      return a;
    }
    case YAML::NodeType::Map: {
      Value o = Value::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar())
          throw Error(fmt::format("{}: line {}: a key that is not a scalar", name,
                                  kv.first.Mark().line + 1));
        spend(budget, kv.first.Scalar().size(), name);
        o[kv.first.Scalar()] = from_yaml(kv.second, depth + 1, name, budget);
      }
      return o;
    }
  }
  return nullptr;
}

}  // namespace

Value parse(std::string_view text, std::string_view name) {
  if (text.size() > kMaxBytes)
    throw Error(fmt::format("{}: larger than {} bytes", name, kMaxBytes));
  if (text.find('\0') != std::string_view::npos)
    throw Error(fmt::format("{}: contains a NUL byte", name));
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    try {
      return Value::parse(text.begin(), text.end(), nullptr, true, false);
    } catch (const Value::exception& e) {
      throw Error(fmt::format("{}: not valid JSON: {}", name, e.what()));
    }
  }
  try {
    YAML::Node root = YAML::Load(std::string(text));
    size_t budget = 4 * text.size() + (1 << 18);
    return from_yaml(root, 0, name, budget);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("{}: not valid YAML: line {}: {}", name, e.mark.line + 1, e.msg));
  }
}

Value load(const std::string& path) {
  // O_NONBLOCK: a FIFO in place of a file must not hang the reader (fstat
  // then refuses it).
  Fd f = sys::open(path, O_RDONLY | O_NONBLOCK);
  struct stat st = sys::fstat(f.get(), path);
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a regular file", path));
  if (static_cast<size_t>(st.st_size) > kMaxBytes)
    throw Error(fmt::format("{}: larger than {} bytes", path, kMaxBytes));
  return parse(sys::read_all(f.get(), path), path);
}

std::string as_string(const Value& v, std::string_view where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  throw Error(fmt::format("{}: expected a string", where));
}

bool as_bool(const Value& v, std::string_view where) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  throw Error(fmt::format("{}: expected true or false", where));
}

long long as_int(const Value& v, std::string_view where) {
  if (v.is_number_integer()) return v.get<long long>();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    long long n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return n;
  }
  throw Error(fmt::format("{}: expected an integer", where));
}

std::vector<std::string> as_strings(const Value& v, std::string_view where) {
  if (v.is_null()) return {};
  if (!v.is_array()) return {as_string(v, where)};
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(as_string(v[i], fmt::format("{}[{}]", where, i)));
  return out;
}

}  // namespace chute::doc
