// ch-run's command line, compatible with Charliecloud 0.3x.
#pragma once

#include <string>
#include <string_view>

#include "chute/plan.hpp"

namespace chute::cli {

// Charliecloud's default size for --write-fake's tmpfs.
inline constexpr const char* kWriteFakeSize = "12%";

struct Parsed {
  enum class Action { kRun, kHelp, kUsage, kVersion, kFeature };
  Action action = Action::kRun;
  Config config;
  std::string feature;   // kFeature
};

// Parse ARGV (argv[0] is the program). Host files named by --set-env=FILE
// are read here. Throws Error naming the option at fault.
Parsed parse_ch_run(int argc, const char* const* argv);

std::string ch_run_help();
std::string ch_run_usage();

// --feature=FEAT: 0 when supported, 1 or 31 as Charliecloud answers for
// features it knows but this build lacks; throws Error for unknown FEAT.
int feature_status(std::string_view feature);

}  // namespace chute::cli
