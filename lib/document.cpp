#include "chute/document.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <yaml.h>

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

// A plain scalar that YAML reads as null (the core schema's spellings,
// and nothing at all), or one tagged !!null.
bool is_null(const yaml_node_t& n) {
  const auto* tag = reinterpret_cast<const char*>(n.tag);
  if (tag && std::string_view(tag) == YAML_NULL_TAG) return true;
  if (n.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  std::string_view v(reinterpret_cast<const char*>(n.data.scalar.value), n.data.scalar.length);
  return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
}

std::string scalar(const yaml_node_t& n) {
  return std::string(reinterpret_cast<const char*>(n.data.scalar.value), n.data.scalar.length);
}

// N, a node of DOC. An alias is a second reference to the node it names
// (which may even contain it): DEPTH and BUDGET bound what following them
// may cost.
Value from_yaml(yaml_document_t& doc, const yaml_node_t* n, int depth, std::string_view name,
                size_t& budget) {
  if (depth > kMaxDepth)
    throw Error(fmt::format("{}: nested more than {} levels deep", name, kMaxDepth));
  spend(budget, 1, name);
  if (!n) return nullptr;
  switch (n->type) {
    case YAML_SCALAR_NODE:
      if (is_null(*n)) return nullptr;
      spend(budget, n->data.scalar.length, name);
      return scalar(*n);
    case YAML_SEQUENCE_NODE: {
      Value a = Value::array();
      for (const yaml_node_item_t* i = n->data.sequence.items.start; i < n->data.sequence.items.top;
           ++i)
        a.push_back(from_yaml(doc, yaml_document_get_node(&doc, *i), depth + 1, name, budget));
      return a;
    }
    case YAML_MAPPING_NODE: {
      Value o = Value::object();
      for (const yaml_node_pair_t* p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
           ++p) {
        const yaml_node_t* k = yaml_document_get_node(&doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE)
          throw Error(fmt::format("{}: line {}: a key that is not a scalar", name,
                                  (k ? k->start_mark.line : n->start_mark.line) + 1));
        std::string key = is_null(*k) ? std::string() : scalar(*k);
        spend(budget, key.size(), name);
        o[key] = from_yaml(doc, yaml_document_get_node(&doc, p->value), depth + 1, name, budget);
      }
      return o;
    }
    case YAML_NO_NODE:
      break;
  }
  return nullptr;
}

// The first document of a YAML stream, as libyaml loads it.
class YamlDocument {
 public:
  YamlDocument(std::string_view text, std::string_view name) {
    if (!yaml_parser_initialize(&parser_)) throw Error(fmt::format("{}: out of memory", name));
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    if (!yaml_parser_load(&parser_, &doc_)) {
      const yaml_mark_t m = parser_.problem ? parser_.problem_mark : parser_.context_mark;
      std::string why = parser_.problem ? parser_.problem : "syntax error";
      if (parser_.context) why = fmt::format("{} {}", parser_.context, why);
      yaml_parser_delete(&parser_);
      throw Error(fmt::format("{}: not valid YAML: line {}: {}", name, m.line + 1, why));
    }
  }
  ~YamlDocument() {
    yaml_document_delete(&doc_);
    yaml_parser_delete(&parser_);
  }
  YamlDocument(const YamlDocument&) = delete;
  YamlDocument& operator=(const YamlDocument&) = delete;
  yaml_document_t& doc() { return doc_; }

 private:
  yaml_parser_t parser_{};
  yaml_document_t doc_{};
};

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
  YamlDocument y(text, name);
  const yaml_node_t* root = yaml_document_get_root_node(&y.doc());
  if (!root) return nullptr;  // an empty stream
  size_t budget = 4 * text.size() + (1 << 18);
  return from_yaml(y.doc(), root, 0, name, budget);
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
