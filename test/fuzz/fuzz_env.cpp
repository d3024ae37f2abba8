// libFuzzer target: ch-run's environment inputs. --set-env FILE and
// --set-env0 FILE records (host files, and the image's /ch/environment),
// single --set-env=K=V assignments, the "$NAME" expansion of values, and
// --unset-env's extended globs, applied in order over a small environment.
// Only chute::Error may escape, and what is accepted keeps the promises of
// env.hpp, checked here against plain restatements of them.
#include <fnmatch.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chute/env.hpp"
#include "chute/error.hpp"

using namespace chute;

namespace {

std::vector<std::string_view> split(std::string_view s, char delim) {
  std::vector<std::string_view> out;
  size_t i = 0;
  for (;;) {
    const size_t j = s.find(delim, i);
    if (j == std::string_view::npos) {
      out.push_back(s.substr(i));
      return out;
    }
    out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
}

bool matches(const std::string& glob, std::string_view name) {
  return ::fnmatch(glob.c_str(), std::string(name).c_str(), FNM_EXTMATCH) == 0;
}

std::string_view name_of(std::string_view entry) { return entry.substr(0, entry.find('=')); }

// A record parse_assignment must refuse: no "=", an empty name, a NUL byte.
bool bad_record(std::string_view record) {
  const size_t eq = record.find('=');
  return eq == std::string_view::npos || eq == 0 || record.find('\0') != std::string_view::npos;
}

// One record: accepted exactly when it has a "=" after a non-empty name and
// no NUL byte; the name is what precedes the first "=", and the value is the
// rest, less one pair of single quotes around all of it.
void check_assignment(std::string_view record) {
  const size_t eq = record.find('=');
  env::Var v;
  try {
    v = env::parse_assignment(record, "fuzz:1");
  } catch (const Error&) {
    if (bad_record(record)) return;
    std::abort();  // a good record refused
  }
  if (bad_record(record)) std::abort();  // a bad record accepted
  if (v.name.empty() || v.name.find('=') != std::string::npos) std::abort();
  if (v.name != record.substr(0, eq)) std::abort();
  const std::string_view raw = record.substr(eq + 1);
  const bool quoted = raw.size() >= 2 && raw.front() == '\'' && raw.back() == '\'';
  if (v.value != (quoted ? raw.substr(1, raw.size() - 2) : raw)) std::abort();
}

// Records: the non-empty pieces between delimiters, each an assignment;
// one bad record refuses the whole text.
std::optional<std::vector<env::Var>> check_records(std::string_view text, char delim) {
  std::vector<env::Var> vars;
  try {
    vars = env::parse_records(text, delim, "fuzz");
  } catch (const Error&) {
    for (auto rec : split(text, delim)) {
      if (rec.empty()) continue;
      if (bad_record(rec)) return std::nullopt;
    }
    std::abort();  // refused, though every record is good
  }
  size_t k = 0;
  for (auto rec : split(text, delim)) {
    if (rec.empty()) continue;
    if (k >= vars.size()) std::abort();  // a record lost
    const env::Var& v = vars[k++];
    if (v.name.empty() || v.name.find('=') != std::string::npos) std::abort();
    if (v.name.find(delim) != std::string::npos || v.value.find(delim) != std::string::npos)
      std::abort();
    if (!rec.starts_with(v.name + "=")) std::abort();
  }
  if (k != vars.size()) std::abort();  // a record made up
  return vars;
}

// The expansion, restated: items split on ":", "$NAME" (NAME non-empty)
// replaced by NAME's value, and dropped with their colon when it is unset
// or empty.
std::string expand_reference(std::string_view value, const Environment& env) {
  std::string out;
  bool first = true;
  for (auto item : split(value, ':')) {
    std::optional<std::string_view> keep = item;
    if (item.size() > 1 && item.front() == '$') {
      keep.reset();
      for (const auto& e : env.entries()) {
        const std::string_view kv(e);
        if (kv.starts_with(item.substr(1)) && kv.size() > item.size() - 1 &&
            kv[item.size() - 1] == '=') {
          keep = kv.substr(item.size());
          break;
        }
      }
      if (keep && keep->empty()) keep.reset();
    }
    if (!keep) continue;
    if (!first) out += ':';
    out += *keep;
    first = false;
  }
  return out;
}

void check_expand(std::string_view value) {
  Environment env;
  env.set("A", "1");
  env.set("EMPTY", "");
  env.set("LIST", "x:y");
  env.set("DOLLAR", "$A");
  env.set("PATH", "/usr/bin:/bin");
  const std::string got = env::expand(value, env);
  if (got != expand_reference(value, env)) std::abort();
  // Without "$NAME" items a value is kept as it is.
  bool has_var = false;
  for (auto item : split(value, ':'))
    if (item.size() > 1 && item.front() == '$') has_var = true;
  if (!has_var && got != value) std::abort();
  // Not recursive: "$DOLLAR" gives "$A", not 1.
  if (value == "$DOLLAR" && got != "$A") std::abort();
}

// --unset-env on its own: every match goes, every other variable stays in
// order, and the count says how many went.
void check_unset(const std::vector<env::Var>& vars, const std::string& glob) {
  Environment env;
  for (const auto& v : vars) env.set(v.name, v.value);
  const std::vector<std::string> before = env.entries();
  const size_t n = env.unset_matching(glob);
  std::vector<std::string> kept;
  for (const auto& e : before)
    if (!matches(glob, name_of(e))) kept.push_back(e);
  if (env.entries() != kept || n != before.size() - kept.size()) std::abort();
}

// The whole of fix(): ops built from the pieces of TEXT, over a small host
// environment chosen by FLAGS.
void check_fix(uint8_t flags, std::string_view text) {
  Environment env;
  env.set("USER", "fuzz");
  switch (flags & 3) {
    case 0: break;  // no PATH
    case 1: env.set("PATH", ""); break;
    case 2: env.set("PATH", "/usr/local/bin:/usr/bin"); break;
    case 3: env.set("PATH", "/usr/bin:/bin/"); break;
  }
  env.set("TMPDIR", "/tmp/fuzz");
  env.set("LD_LIBRARY_PATH", "/opt/lib");

  env::Plan plan;
  plan.expand = (flags & 4) == 0;
  if (flags & 8) plan.home = "/home/fuzz";
  std::vector<std::string> image_files;
  for (auto piece : split(text, '\x01')) {
    if (piece.empty() || plan.ops.size() >= 16) continue;
    const std::string_view rest = piece.substr(1);
    env::Op op;
    switch (static_cast<unsigned char>(piece[0]) % 3) {
      case 0: {  // --set-env=FILE, read at parse time
        auto vars = check_records(rest, (piece[0] & 8) ? '\0' : '\n');
        if (!vars) continue;
        op.kind = env::Op::Kind::kSet;
        op.vars = std::move(*vars);
        break;
      }
      case 1:  // bare --set-env or --set-env0: the image's file
        op.kind = env::Op::Kind::kImageFile;
        op.delim = (piece[0] & 8) ? '\0' : '\n';
        image_files.emplace_back(rest);
        break;
      case 2:  // --unset-env=GLOB (never empty: the command line refuses it)
        if (rest.empty()) continue;
        op.kind = env::Op::Kind::kUnset;
        op.glob = std::string(rest);
        break;
    }
    plan.ops.push_back(std::move(op));
  }

  size_t reads = 0;
  auto read_image_file = [&]() -> std::string {
    if (reads >= image_files.size()) std::abort();  // read more often than asked
    return image_files[reads++];
  };
  bool warned = false;
  auto warn = [&](std::string_view) { warned = true; };
  try {
    env::fix(env, plan, "/home/default", read_image_file, warn);
  } catch (const Error&) {
    return;  // a bad image file
  }
  if (reads != image_files.size()) std::abort();
  if (warned != ((flags & 3) == 0)) std::abort();  // warns exactly when PATH is unset

  // Every entry a variable with a name, each name once; CH_RUNNING set
  // whatever the ops did.
  std::set<std::string_view> names;
  for (const auto& e : env.entries()) {
    const size_t eq = e.find('=');
    if (eq == 0 || eq == std::string::npos) std::abort();
    if (!names.insert(name_of(e)).second) std::abort();
  }
  if (env.get("CH_RUNNING") != env::kRunningValue) std::abort();

  // What the ops say each name ends as: a value, or absent. Values expanded
  // from "$" items are left unclaimed until a later op claims them again.
  std::map<std::string, std::optional<std::string>> want;
  want["TMPDIR"] = std::nullopt;
  want["HOME"] = plan.home ? *plan.home : std::string("/home/default");
  want["USER"] = "fuzz";
  want["LD_LIBRARY_PATH"] = "/opt/lib";
  switch (flags & 3) {
    case 0: want["PATH"] = std::nullopt; break;
    case 1: want["PATH"] = "/bin"; break;
    case 2: want["PATH"] = "/usr/local/bin:/usr/bin:/bin"; break;
    case 3: want["PATH"] = "/usr/bin:/bin/"; break;
  }
  std::set<std::string> known;
  for (const auto& [name, value] : want) known.insert(name);
  size_t image = 0;
  for (const auto& op : plan.ops) {
    if (op.kind == env::Op::Kind::kUnset) {
      for (const auto& name : known)
        if (matches(op.glob, name)) want[name] = std::nullopt;
      continue;
    }
    const std::vector<env::Var> vars =
        op.kind == env::Op::Kind::kSet
            ? op.vars
            : env::parse_records(image_files[image++], op.delim, "fuzz");
    for (const auto& v : vars) {
      known.insert(v.name);
      if (plan.expand && v.value.find('$') != std::string::npos)
        want.erase(v.name);
      else
        want[v.name] = v.value;
    }
  }
  for (const auto& [name, value] : want) {
    if (name == "CH_RUNNING") continue;
    const auto got = env.get(name);
    if (got.has_value() != value.has_value()) std::abort();
    if (got && *got != *value) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  check_assignment(text);
  const auto lines = check_records(text, '\n');
  const auto nuls = check_records(text, '\0');
  check_expand(text);

  // A glob from the first line, over variables from the rest.
  const size_t nl = text.find('\n');
  if (nl != std::string_view::npos && nl > 0) {
    if (auto vars = check_records(text.substr(nl + 1), '\n'))
      check_unset(*vars, std::string(text.substr(0, nl)));
  }
  if (lines && nuls && lines->size() + nuls->size() > 0) {
    // Names and values already checked; one more: the same text read both
    // ways names the same first variable when it has neither delimiter.
    const size_t end = text.find_first_of(std::string_view("\n\0", 2));
    if (end == std::string_view::npos && (*lines)[0] != (*nuls)[0]) std::abort();
  }
  check_fix(flags, text);
  return 0;
}
