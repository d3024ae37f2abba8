// ch-run: run a command in a container image, unprivileged.
// Parse options, build the plan, run it; map errors to exit codes.

#include <cstdio>
#include <exception>

#include "chute/cli.hpp"
#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/plan.hpp"
#include "chute/run.hpp"

using namespace chute;

int main(int argc, char** argv) {
  log::set_program("ch-run");
  try {
    refuse_setuid("ch-run");
    cli::Parsed parsed;
    try {
      parsed = cli::parse_ch_run(argc, argv);
    } catch (const Error&) {
      std::fputs(cli::ch_run_usage().c_str(), stderr);
      throw;
    }
    log::set_level(parsed.config.verbosity);
    switch (parsed.action) {
      case cli::Parsed::Action::kHelp:
        std::fputs(cli::ch_run_help().c_str(), stdout);
        return 0;
      case cli::Parsed::Action::kUsage:
        std::fputs(cli::ch_run_usage().c_str(), stdout);
        return 0;
      case cli::Parsed::Action::kVersion:
        // On stderr, as Charliecloud's ch-run prints it.
        std::fputs(CHUTE_VERSION "\n", stderr);
        return 0;
      case cli::Parsed::Action::kFeature:
        return cli::feature_status(parsed.feature);
      case cli::Parsed::Action::kRun:
        break;
    }
    run(make_plan(parsed.config, HostFacts::current()));
  } catch (const std::exception& e) {
    log::emit("error", describe(e));
    return exit_code_of(e);
  }
}
