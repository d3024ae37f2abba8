// libFuzzer target: ch-run's command line. The input is read twice: whole,
// as one -b/--bind argument, and split on NUL bytes into an argv for the
// full option parser. Only chute's errors may escape; an accepted bind has
// an absolute, normalised destination other than "/" with no ".." in it,
// and is read-only only when it ends in ":ro"; an accepted command line
// holds only what its options promise.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "chute/bind_spec.hpp"
#include "chute/cli.hpp"
#include "chute/error.hpp"
#include "chute/path.hpp"
#include "chute/seccomp.hpp"

using namespace chute;

namespace {

void check_bind(const BindSpec& b) {
  const std::string_view dst(b.dst);
  if (b.src.empty() || b.src.find(':') != std::string::npos) std::abort();
  if (!path::is_absolute(dst) || dst == "/" || path::has_dotdot(dst)) std::abort();
  if (path::normalise(dst) != dst) std::abort();
  if (b.src.find('\0') != std::string::npos || dst.find('\0') != std::string_view::npos)
    std::abort();
}

void bind(std::string_view arg) {
  BindSpec b;
  try {
    b = bind_spec::parse(arg);
  } catch (const Error&) {
    return;
  }
  check_bind(b);
  size_t colons = 0;
  for (char c : arg) colons += c == ':';
  if (b.readonly != (colons == 2 && arg.ends_with(":ro"))) std::abort();
  if (!arg.starts_with(b.src)) std::abort();
  // Parsing what it means again gives the same bind.
  const std::string again = b.src + ":" + b.dst + (b.readonly ? ":ro" : "");
  try {
    if (bind_spec::parse(again) != b) std::abort();
  } catch (const Error&) {
    std::abort();
  }
}

// --set-env=FILE, --set-env0=FILE and --seccomp-deny=FILE read host files
// at parse time: leave out any word that could be (an abbreviation of) one
// of them with a value that names a file rather than assigning a variable.
bool reads_a_file(std::string_view word) {
  if (!word.starts_with("--")) return false;
  word.remove_prefix(2);
  const size_t eq = word.find('=');
  if (eq == std::string_view::npos) return false;
  const std::string_view name = word.substr(0, eq);
  const std::string_view value = word.substr(eq + 1);
  if (!name.empty() && std::string_view("seccomp-deny").starts_with(name)) return true;
  return !name.empty() && std::string_view("set-env0").starts_with(name) &&
         value.find('=') == std::string_view::npos;
}

void command_line(std::string_view text) {
  std::vector<std::string> words{"ch-run"};
  size_t i = 0;
  while (i <= text.size() && words.size() < 64) {
    size_t j = text.find('\0', i);
    if (j == std::string_view::npos) j = text.size();
    const std::string_view w = text.substr(i, j - i);
    if (!reads_a_file(w)) words.emplace_back(w);
    i = j + 1;
  }
  std::vector<const char*> argv;
  for (const auto& w : words) argv.push_back(w.c_str());
  argv.push_back(nullptr);

  cli::Parsed p;
  try {
    p = cli::parse_ch_run(static_cast<int>(words.size()), argv.data());
  } catch (const Error&) {
    return;
  }
  const Config& c = p.config;
  for (const auto& b : c.binds) check_bind(b);
  if (c.verbosity < -3 || c.verbosity > 3) std::abort();
  for (const auto& op : c.env_ops) {
    switch (op.kind) {
      case env::Op::Kind::kSet:
        if (op.vars.size() != 1) std::abort();  // never a file here
        for (const auto& v : op.vars)
          if (v.name.empty() || v.name.find('=') != std::string::npos) std::abort();
        break;
      case env::Op::Kind::kImageFile:
        if (op.delim != '\n' && op.delim != '\0') std::abort();
        break;
      case env::Op::Kind::kUnset:
        if (op.glob.empty()) std::abort();
        break;
    }
  }
  for (const auto* s : {&c.cd, &c.storage, &c.mount_dir, &c.write_fake})
    if (*s && (*s)->empty()) std::abort();
  if (c.join_pid && *c.join_pid <= 0) std::abort();
  if ((c.join_ct || c.join_tag) && !c.join) std::abort();
  for (int cap : c.cap_drop)  // capability numbers, or -1 for all
    if (cap < -1 || cap > 63) std::abort();
  if (c.uid && *c.uid == static_cast<uid_t>(-1)) std::abort();
  if (c.gid && *c.gid == static_cast<gid_t>(-1)) std::abort();
  if (p.action == cli::Parsed::Action::kRun) {
    // Both IMAGE and COMMAND are there, and they came from the words.
    if (c.argv.empty() || c.argv.size() + 1 >= words.size()) std::abort();
  }
  // Never a file here: the built-in deny list only, as many times as asked.
  const auto& builtin = seccomp::default_deny();
  if (c.seccomp.deny.size() % builtin.size() != 0) std::abort();
  for (size_t k = 0; k < c.seccomp.deny.size(); ++k)
    if (c.seccomp.deny[k].name != builtin[k % builtin.size()] ||
        c.seccomp.deny[k].err != seccomp::kDenyErrno)
      std::abort();
  // seccomp: its self-test forks a child, not for every input.
  if (p.action == cli::Parsed::Action::kFeature && p.feature != "seccomp") {
    try {
      const int s = cli::feature_status(p.feature);
      if (s != 0 && s != 1 && s != kExitMisc) std::abort();
    } catch (const Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bind(text);
  command_line(text);
  return 0;
}
