// Starting the job: the last steps before execve(2). exec() allocates
// nothing and throws nothing.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chute/env.hpp"
#include "chute/seccomp.hpp"

namespace chute::job {

struct Spec {
  std::vector<std::string> argv_store;
  std::vector<char*> argv;       // NULL-terminated, into argv_store
  Environment env;
  std::vector<char*> envp;       // NULL-terminated, into env
  std::optional<std::string> cwd;
  int verbosity = 0;             // -q levels redirect stdout/stderr
  bool set_mask = false;         // child of a supervisor: signal mask and CPUs to restore
  sigset_t mask{};
  bool set_cpus = false;
  cpu_set_t cpus{};
  // Capabilities dropped from the bounding set before the job starts (see
  // caps_to_drop()); the ambient, inheritable, permitted and effective sets
  // are always cleared.
  std::vector<int> drop_bounding;
  // --seccomp, --seccomp-deny: loaded last, just before execve(2) (root
  // emulation would fake the capability calls above).
  seccomp::Program seccomp;
};

// The bounding-set drops for a job running as container uid UID with
// --cap-drop's list CAP_DROP (capability numbers; -1 for "all"): a job not
// root in its namespace can never regain a capability, so every one goes;
// root keeps the namespaced ones it is not told to drop.
std::vector<int> caps_to_drop(uid_t uid, const std::vector<int>& cap_drop);

// --cap-drop's argument: "all", or names separated by commas, with or
// without "cap_", any case ("sys_admin", "CAP_NET_RAW"). Throws Error
// naming an unknown one.
std::vector<int> parse_cap_list(std::string_view text);

// Build the argv and envp arrays of SPEC from its strings.
void finish(Spec& spec);

// Which step failed, for the message.
enum class Step { kNone, kCwd, kNoNewPrivs, kDevNull, kCaps, kSeccomp, kSeccompCheck, kExec };

struct Failure {
  Step step = Step::kNone;
  int err = 0;   // kSeccompCheck: what seccomp::check() returned
};

// Apply SPEC and execute the command, searching the job's PATH. Returns
// only if that failed. Async-signal-safe apart from execvp's PATH search.
Failure exec(const Spec& spec) noexcept;

// The error a failure makes: exit 31, or 49 when the command itself could
// not be executed.
[[noreturn]] void throw_failure(const Spec& spec, Failure f);

}  // namespace chute::job
