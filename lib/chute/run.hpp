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
// process. Returns only by throwing. A plan left unfinished (--join) is
// finished here if this process turns out to build the container.
[[noreturn]] void run(Plan plan);


}  // namespace chute
