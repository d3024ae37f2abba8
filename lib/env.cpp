#include "chute/env.hpp"

#include <fnmatch.h>

#include <fmt/core.h>

#include "chute/error.hpp"

namespace chute {

Environment Environment::from_envp(const char* const* envp) {
  Environment e;
  for (; envp != nullptr && *envp != nullptr; ++envp) {
    std::string_view kv(*envp);
    if (kv.find('=') == std::string_view::npos) continue;  // not a variable
    e.entries_.emplace_back(kv);
  }
  return e;
}

std::vector<std::string>::iterator Environment::find(std::string_view name) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    std::string_view kv(*it);
    if (kv.size() > name.size() && kv[name.size()] == '=' && kv.starts_with(name)) return it;
  }
  return entries_.end();
}

std::optional<std::string_view> Environment::get(std::string_view name) const {
  for (const auto& e : entries_) {
    std::string_view kv(e);
    if (kv.size() > name.size() && kv[name.size()] == '=' && kv.starts_with(name))
      return kv.substr(name.size() + 1);
  }
  return std::nullopt;
}

void Environment::set(std::string_view name, std::string_view value) {
  std::string kv = fmt::format("{}={}", name, value);
  auto it = find(name);
  if (it != entries_.end())
    *it = std::move(kv);
  else
    entries_.push_back(std::move(kv));
}

void Environment::unset(std::string_view name) {
  auto it = find(name);
  if (it != entries_.end()) entries_.erase(it);
}

size_t Environment::unset_matching(const std::string& glob) {
  size_t before = entries_.size();
  std::erase_if(entries_, [&](const std::string& kv) {
    std::string name = kv.substr(0, kv.find('='));
    return ::fnmatch(glob.c_str(), name.c_str(), FNM_EXTMATCH) == 0;
  });
  return before - entries_.size();
}

std::vector<char*> Environment::envp() {
  std::vector<char*> p;
  p.reserve(entries_.size() + 1);
  for (auto& e : entries_) p.push_back(e.data());
  p.push_back(nullptr);
  return p;
}

namespace env {

Var parse_assignment(std::string_view record, std::string_view where) {
  auto eq = record.find('=');
  if (eq == std::string_view::npos)
    throw Error(fmt::format("can't parse variable: no delimiter: {}", where));
  if (eq == 0) throw Error(fmt::format("can't parse variable: empty name: {}", where));
  // The kernel would cut the variable at the NUL byte, silently.
  if (record.find('\0') != std::string_view::npos)
    throw Error(fmt::format("can't parse variable: NUL byte: {}", where));
  Var v{std::string(record.substr(0, eq)), std::string(record.substr(eq + 1))};
  if (v.value.size() >= 2 && v.value.front() == '\'' && v.value.back() == '\'')
    v.value = v.value.substr(1, v.value.size() - 2);
  return v;
}

std::vector<Var> parse_records(std::string_view text, char delim, std::string_view source,
                               size_t max_record) {
  std::vector<Var> vars;
  size_t i = 0;
  size_t line = 0;
  while (i <= text.size()) {
    size_t j = text.find(delim, i);
    if (j == std::string_view::npos) j = text.size();
    ++line;
    std::string_view rec = text.substr(i, j - i);
    if (rec.size() > max_record)
      throw Error(fmt::format("can't parse variable: longer than {} bytes, the most the kernel "
                              "passes to a program: {}:{}", max_record, source, line));
    if (!rec.empty()) vars.push_back(parse_assignment(rec, fmt::format("{}:{}", source, line)));
    i = j + 1;
  }
  return vars;
}

std::string expand(std::string_view value, const Environment& env) {
  std::string out;
  bool first = true;
  size_t i = 0;
  for (;;) {
    size_t j = value.find(':', i);
    std::string_view item = value.substr(i, j == std::string_view::npos ? j : j - i);
    std::optional<std::string_view> keep = item;
    if (item.size() > 1 && item.front() == '$') {
      keep = env.get(item.substr(1));
      if (keep && keep->empty()) keep.reset();
    }
    if (keep) {
      if (!first) out += ':';
      out += *keep;
      first = false;
    }
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return out;
}

namespace {

// True when one of PATH's entries is /bin itself.
bool path_has_bin(std::string_view path) {
  size_t i = 0;
  for (;;) {
    size_t j = path.find(':', i);
    std::string_view item = path.substr(i, j == std::string_view::npos ? j : j - i);
    if (item == "/bin" || item == "/bin/") return true;
    if (j == std::string_view::npos) return false;
    i = j + 1;
  }
}

void set_all(Environment& env, const std::vector<Var>& vars, bool do_expand) {
  for (const auto& v : vars) env.set(v.name, do_expand ? expand(v.value, env) : v.value);
}

}  // namespace

void fix(Environment& env, const Plan& plan, std::string_view home_default,
         const std::function<std::string()>& read_image_file,
         const std::function<void(std::string_view)>& warn) {
  env.set("HOME", plan.home ? std::string_view(*plan.home) : home_default);

  if (auto p = env.get("PATH")) {
    if (p->empty())
      env.set("PATH", "/bin");
    else if (!path_has_bin(*p))
      env.set("PATH", fmt::format("{}:/bin", *p));
  } else {
    warn("$PATH not set");
  }

  env.unset("TMPDIR");

  for (const auto& op : plan.ops) {
    switch (op.kind) {
      case Op::Kind::kSet:
        set_all(env, op.vars, plan.expand);
        break;
      case Op::Kind::kImageFile:
        set_all(env, parse_records(read_image_file(), op.delim, "/ch/environment"), plan.expand);
        break;
      case Op::Kind::kUnset:
        env.unset_matching(op.glob);
        break;
    }
  }

  env.set("CH_RUNNING", kRunningValue);
}

}  // namespace env
}  // namespace chute
