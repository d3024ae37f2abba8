// Starting the job: the last steps before execve(2). exec() allocates
// nothing and throws nothing.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "chute/env.hpp"

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
};

// Build the argv and envp arrays of SPEC from its strings.
void finish(Spec& spec);

// Which step failed, for the message.
enum class Step { kNone, kCwd, kNoNewPrivs, kDevNull, kExec };

struct Failure {
  Step step = Step::kNone;
  int err = 0;
};

// Apply SPEC and execute the command, searching the job's PATH. Returns
// only if that failed. Async-signal-safe apart from execvp's PATH search.
Failure exec(const Spec& spec) noexcept;

// The error a failure makes: exit 31, or 49 when the command itself could
// not be executed.
[[noreturn]] void throw_failure(const Spec& spec, Failure f);

}  // namespace chute::job
