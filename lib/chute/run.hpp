// ch-run's pipeline: plan, then act.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chute/env.hpp"
#include "chute/plan.hpp"

namespace chute {

// Refuse to run with elevated privileges from a setuid/setgid bit or file
// capabilities: chute needs none, and would hand them to the job.
void refuse_setuid(std::string_view program);

// Enter the container PLAN describes and execute the job in place of this
// process. Returns only by throwing.
[[noreturn]] void run(const Plan& plan);

// The last stage: working directory, no_new_privs, quiet redirections, exec.
// Throws SysError with kExitExec when the command can't be executed.
[[noreturn]] void exec_job(const std::vector<std::string>& argv, Environment& env,
                           const std::optional<std::string>& cwd, int verbosity);

}  // namespace chute
