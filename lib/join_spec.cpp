// The pure half of --join: how many peers, which tag, what must match.

#include <charconv>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/join.hpp"
#include "chute/plan.hpp"

namespace chute::join {

namespace {

// The leading decimal number of TEXT, and where it ends.
std::optional<std::pair<long, size_t>> leading_number(std::string_view text) {
  long n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  return std::pair{n, static_cast<size_t>(end - text.data())};
}

}  // namespace

std::optional<long> tasks_on_node(std::string_view list, long nodeid) {
  if (nodeid < 0) return std::nullopt;
  long node = 0;
  while (!list.empty()) {
    auto n = leading_number(list);
    if (!n || n->first <= 0) return std::nullopt;
    list.remove_prefix(n->second);
    long repeat = 1;
    if (list.starts_with("(x")) {
      list.remove_prefix(2);
      auto r = leading_number(list);
      if (!r || r->first <= 0) return std::nullopt;
      list.remove_prefix(r->second);
      if (!list.starts_with(')')) return std::nullopt;
      list.remove_prefix(1);
      repeat = r->first;
    }
    if (nodeid < node + repeat) return n->first;
    node += repeat;
    if (list.empty()) break;
    if (!list.starts_with(',')) return std::nullopt;
    list.remove_prefix(1);
  }
  return std::nullopt;
}

std::pair<long, std::string> resolve_count(const std::optional<std::string>& option,
                                           const Environment& env) {
  if (option) {
    auto n = leading_number(*option);
    if (!n || n->second != option->size() || n->first <= 0)
      throw Error(fmt::format("--join-ct: not a positive integer: {:?}", *option));
    return {n->first, "--join-ct"};
  }
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_STEP_TASKS_PER_NODE",
                          "SLURM_CPUS_ON_NODE"}) {
    auto v = env.get(var);
    if (!v) continue;
    if (std::string_view(var) == "SLURM_STEP_TASKS_PER_NODE") {
      if (auto id = env.get("SLURM_NODEID")) {
        auto nodeid = leading_number(*id);
        if (nodeid && nodeid->second == id->size())
          if (auto n = tasks_on_node(*v, nodeid->first))
            return {*n, fmt::format("{} for node {}", var, nodeid->first)};
      }
    }
    auto n = leading_number(*v);
    if (!n || n->first <= 0)
      throw Error(fmt::format("--join: ${} is not a positive number: {:?}", var, *v));
    return {n->first, fmt::format("${}", var)};
  }
  throw Error("--join: can't find peer count: give --join-ct, or run under Open MPI or Slurm "
              "(OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_STEP_TASKS_PER_NODE, SLURM_CPUS_ON_NODE)");
}

void check_tag(std::string_view tag) {
  constexpr std::string_view kExtra = "._+:@%=,-";
  if (tag.empty()) throw Error("--join-tag: empty tag");
  if (tag.size() > 64)
    throw Error(fmt::format("--join-tag: tag longer than 64 characters: {:?}", tag));
  for (char c : tag) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              kExtra.find(c) != std::string_view::npos;
    if (!ok)
      throw Error(fmt::format("--join-tag: invalid character {:?} in tag {:?} (letters, digits "
                              "and {} only)", c, tag, kExtra));
  }
}

std::pair<std::string, std::string> resolve_tag(const std::optional<std::string>& option,
                                                const Environment& env, pid_t parent) {
  std::string tag, from;
  if (option) {
    tag = *option;
    from = "--join-tag";
  } else if (auto step = env.get("SLURM_STEP_ID")) {
    auto job = env.get("SLURM_JOB_ID");
    tag = job ? fmt::format("{}.{}", *job, *step) : std::string(*step);
    from = job ? "$SLURM_JOB_ID.$SLURM_STEP_ID" : "$SLURM_STEP_ID";
  } else {
    tag = std::to_string(parent);
    from = "parent process id";
  }
  try {
    check_tag(tag);
  } catch (const Error& e) {
    if (from == "--join-tag") throw;
    throw Error(fmt::format("--join: tag from {}: {}", from, e.what()));
  }
  return {tag, from};
}

std::string socket_name(uid_t uid, std::string_view tag) {
  return fmt::format("chute-join/{}/{}", uid, tag);
}

std::string fingerprint(const Plan& p, dev_t dev, ino_t ino) {
  std::string out;
  auto line = [&out](std::string_view what, std::string_view value) {
    out += fmt::format("{}: {}\n", what, value);
  };
  line("image", fmt::format("{} (device {}, inode {})", p.image.path, dev, ino));
  line("image kind", p.image.kind == ImageKind::kSquash ? "SquashFS" : "directory");
  line("--write", p.writable ? "yes" : "no");
  line("--write-fake", p.write_fake.value_or("no"));
  line("--uid", std::to_string(p.ids.container_uid));
  line("--gid", std::to_string(p.ids.container_gid));
  line("--no-passwd", p.no_passwd ? "yes" : "no");
  if (p.image.kind == ImageKind::kSquash) line("--mount", p.squash_mount);
  size_t i = 0;
  for (const auto& m : p.mounts) {
    const char* kind = m.kind == Mount::Kind::kTmpfs  ? "tmpfs"
                       : m.kind == Mount::Kind::kProc ? "proc"
                                                      : "bind";
    line(fmt::format("mount {} ({})", ++i, m.why),
         fmt::format("{} {} on {}{}", kind, m.src, m.dst,
                     m.readonly ? " read-only" : ""));
  }
  line("mounts", std::to_string(i));
  // --gpu, --device, --mpi: what they put in, one item a line.
  const std::string described = p.inject.describe();
  std::string_view inj = described;
  size_t j = 0;
  while (!inj.empty()) {
    size_t nl = inj.find('\n');
    line(fmt::format("injected {}", ++j), inj.substr(0, nl));
    inj.remove_prefix(nl == std::string_view::npos ? inj.size() : nl + 1);
  }
  line("injected", std::to_string(j));
  return out;
}

std::string first_difference(std::string_view mine, std::string_view theirs) {
  auto next = [](std::string_view& s) {
    size_t nl = s.find('\n');
    std::string_view l = s.substr(0, nl);
    s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
    return l;
  };
  while (!mine.empty() || !theirs.empty()) {
    std::string_view a = next(mine), b = next(theirs);
    if (a == b) continue;
    auto colon_a = a.find(": "), colon_b = b.find(": ");
    std::string_view what_a = a.substr(0, colon_a), what_b = b.substr(0, colon_b);
    if (what_a == what_b && colon_a != std::string_view::npos && colon_b != std::string_view::npos)
      return fmt::format("{}: {} here, {} there", what_a, a.substr(colon_a + 2),
                         b.substr(colon_b + 2));
    return fmt::format("{} here, {} there", a.empty() ? "nothing more" : a,
                       b.empty() ? "nothing more" : b);
  }
  return "";
}

}  // namespace chute::join
